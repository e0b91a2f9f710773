"""The media pipeline: download (yt-dlp in a child process), process (FFmpeg), measure.

It takes a job spec and a work directory and returns measurements; it never imports the
database. The worker turns its results into state changes and usage."""
