"""Media: probing, validating and transcoding call audio with ffmpeg."""
