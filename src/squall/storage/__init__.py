"""Where outputs are kept: a local folder by default, any S3-compatible bucket in production."""
