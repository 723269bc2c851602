# Videoflix: one image for the API (waitress) and the worker (Huey + the ffmpeg 9 of imageio-ffmpeg).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    MEDIA_ROOT=/data/media

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --create-home --uid 1000 videoflix \
    && mkdir -p /data/media /app/instance \
    && chown -R videoflix /data /app/instance
USER videoflix

EXPOSE 8000
# waitress (WEB_THREADS, PROXY_COUNT and TRUSTED_PROXY from the environment); workers run apart.
CMD ["flask", "--app", "wsgi", "serve", "--no-worker", "--host", "0.0.0.0", "--port", "8000"]
