"""The transcode job: a video's source becomes published HLS renditions and a poster."""
