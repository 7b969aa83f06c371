"""The frozen teachers: the backbones cut to three feature levels and the teacher-feature cache.

- :mod:`strategies.teachers.backbones`: the backbone registry and ``build_teacher``;
- :mod:`strategies.teachers.teacher_cache`: the teacher's features of each image, computed once
  per run and looked up by the image's content.

The lowest layer above the shared errors: it knows nothing of detectors or Avalanche.
"""
