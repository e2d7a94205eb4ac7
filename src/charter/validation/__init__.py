"""Validation: policy as code (``policy``), the gates (``gates``) and running them on a registered
version as recorded evidence (``runner``)."""
