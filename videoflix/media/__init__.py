"""What ffmpeg knows: probing, the ladder and its arguments, playlists, running ffmpeg.
No Flask and no database here."""
