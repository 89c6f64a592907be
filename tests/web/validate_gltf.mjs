// Usage: node validate_gltf.mjs FILE.glb  (run with NODE_PATH or from a folder whose node_modules
// holds gltf-validator). Prints the Khronos glTF-Validator report's issues as JSON on stdout.
import { createRequire } from "module";
import { readFileSync } from "fs";
const require = createRequire(process.env.GANFIT_NODE_MODULES + "/");
const validator = require("gltf-validator");
const data = new Uint8Array(readFileSync(process.argv[2]));
const report = await validator.validateBytes(data, { maxIssues: 200 });
console.log(JSON.stringify({ issues: report.issues, info: report.info }));
