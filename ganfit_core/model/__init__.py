"""The face model: the ICT-FaceKit morphable model, its named index layout, eyes, and the builders."""
