"""Report models (JSON snapshots) and their renderers (HTML, SVG); renderers never compute."""
