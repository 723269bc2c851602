"""Resumable uploads for staff: the tus 1.0.0 protocol (https://tus.io/protocols/resumable-upload)
with its creation, expiration, checksum and termination extensions, at /admin/uploads/.

The browser (tus-js-client in the admin's create form) or any tus client sends a file in chunks:
POST creates an upload of a declared length, HEAD tells how much has arrived, PATCH appends a
chunk at that offset, DELETE gives up. Each chunk is written to the upload's file in this machine's
scratch folder as it is read (never held in memory) and synced before the offset is saved, so an
offset survives a restart. A complete upload becomes a video when the form is saved (admin.py);
one nobody finishes expires after UPLOAD_EXPIRY_HOURS and its bytes are removed."""

import base64
import binascii
import contextlib
import fcntl
import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request, url_for

from videoflix.auth.staff import current_staff
from videoflix.extensions import as_utc, db
from videoflix.media.probe import SNIFF_BYTES, looks_like_video
from videoflix.uploads.models import Upload
from videoflix.uploads.spool import part_path, remove_orphaned_parts, remove_upload

bp = Blueprint("uploads", __name__, url_prefix="/admin/uploads")

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,expiration,checksum,termination"
CHECKSUMS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}
CHUNK_TYPE = "application/offset+octet-stream"
BLOCK = 1024 * 1024  # bytes read from the request and written at a time
CHECKSUM_MISMATCH = 460  # the tus checksum extension's status


def tus_error(status, detail):
    response = jsonify({"detail": detail})
    response.status_code = status
    return response


@bp.before_request
def tus_request():
    """Staff only; every request but OPTIONS speaks this protocol version; chunks may be large."""
    if request.method == "OPTIONS":
        return None
    if current_staff() is None:
        return tus_error(403, "Only signed-in staff may upload.")
    origin = request.headers.get("Origin")
    if origin and origin != request.host_url.rstrip("/"):  # browsers send it; only the admin's pages may
        return tus_error(403, "Uploads come from the admin's own pages.")
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        response = tus_error(412, f"This server speaks tus {TUS_VERSION}.")
        response.headers["Tus-Version"] = TUS_VERSION
        return response
    request.max_content_length = current_app.config["MAX_UPLOAD_BYTES"]
    return None


@bp.after_request
def tus_headers(response):
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/", methods=["OPTIONS"])
def capabilities():
    response = current_app.response_class(status=204)
    response.headers.update({
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(current_app.config["MAX_UPLOAD_BYTES"]),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    })  # fmt: skip
    return response


@bp.post("/")
def create():
    length = _non_negative_int(request.headers.get("Upload-Length"))
    if length is None:
        return tus_error(400, "Upload-Length must be the file's size in bytes (deferred lengths are not supported).")
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    if length > limit:
        return tus_error(413, f"The file is larger than the limit of {limit // 2**20} MB.")
    metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
    if metadata is None:
        return tus_error(400, "Upload-Metadata must be comma-separated keys with base64 values.")
    over_quota = quota_problem(current_staff().id, length)
    if over_quota:
        return tus_error(403, over_quota)
    upload = Upload(
        id=uuid.uuid4().hex,
        staff_id=current_staff().id,
        length=length,
        offset=0,
        filename=os.path.basename(metadata.get("filename", ""))[:255],
        expires_at=_new_expiry(),
    )
    remove_orphaned_parts()
    part_path(upload.id).touch()
    db.session.add(upload)
    db.session.commit()
    response = current_app.response_class(status=201)
    response.headers["Location"] = url_for(".upload", upload_id=upload.id, _external=True)
    response.headers["Upload-Expires"] = _http_date(upload.expires_at)
    return response


def quota_problem(staff_id, length):
    """Why this staff member may not start an upload of `length` bytes now, or None: every upload
    not yet saved as a video holds its bytes on the scratch disk, so they are capped per person."""
    count, reserved = db.session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Upload.length), 0)).where(Upload.staff_id == staff_id)
    ).one()
    limit = current_app.config["MAX_OPEN_UPLOADS"]
    if count >= limit:
        return f"You have {count} unfinished uploads (the limit is {limit}): finish or cancel one first."
    room = current_app.config["MAX_PENDING_UPLOAD_MB"] * 2**20
    if reserved + length > room:
        return (
            f"Your unfinished uploads hold {reserved / 2**20:.1f} MB; this one ({length / 2**20:.1f} MB) would go "
            f"over the limit of {room // 2**20} MB: finish or cancel one first."
        )
    return None


@bp.route("/<upload_id>", methods=["HEAD"])
def upload(upload_id):
    found, problem = _own_upload(upload_id)
    if problem:
        return problem
    response = current_app.response_class(status=200)
    response.headers.update({
        "Upload-Offset": str(found.offset),
        "Upload-Length": str(found.length),
        "Upload-Expires": _http_date(found.expires_at),
    })  # fmt: skip
    return response


@bp.route("/<upload_id>", methods=["PATCH"])
def append(upload_id):
    found, problem = _own_upload(upload_id)
    if problem:
        return problem
    if request.mimetype != CHUNK_TYPE:
        return tus_error(415, f"Chunks are sent as {CHUNK_TYPE}.")
    checksum = request.headers.get("Upload-Checksum")
    digest = expected = None
    if checksum:
        algorithm, _, encoded = checksum.partition(" ")
        if algorithm not in CHECKSUMS:
            return tus_error(400, f"Checksums are one of {', '.join(CHECKSUMS)}.")
        try:
            expected = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            return tus_error(400, "Upload-Checksum must be an algorithm and a base64 digest.")
        digest = CHECKSUMS[algorithm]()
    with open(part_path(found.id), "r+b") as part:
        try:
            fcntl.flock(part, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return tus_error(423, "Another request is writing to this upload.")
        db.session.refresh(found)  # the offset as the last writer left it, read under the lock
        if _non_negative_int(request.headers.get("Upload-Offset")) != found.offset:
            return tus_error(409, f"The upload is at offset {found.offset}.")
        written, too_long = _write_chunk(part, found, digest)
        if too_long or (digest is not None and digest.digest() != expected):
            part.truncate(found.offset)  # the chunk is refused whole
            if too_long:
                return tus_error(413, f"The upload is {found.length} bytes long; the chunk goes past its end.")
            return tus_error(CHECKSUM_MISMATCH, "The chunk does not match its Upload-Checksum.")
        part.truncate(found.offset + written)  # bytes of an earlier, unrecorded write go
        part.flush()
        os.fsync(part.fileno())  # on disk before the offset says so
        refused = _not_a_video(part, found.offset, found.offset + written, found.length)
    if refused:
        remove_upload(found)
        db.session.commit()
        return tus_error(415, refused)
    found.offset += written
    found.expires_at = _new_expiry()
    db.session.commit()
    response = current_app.response_class(status=204)
    response.headers["Upload-Offset"] = str(found.offset)
    response.headers["Upload-Expires"] = _http_date(found.expires_at)
    return response


@bp.delete("/<upload_id>")
def terminate(upload_id):
    found, problem = _own_upload(upload_id)
    if problem:
        return problem
    remove_upload(found)
    db.session.commit()
    return current_app.response_class(status=204)


def _not_a_video(part, before, after, length):
    """The reason to refuse the upload once its first bytes are in and start no video container
    (media/probe.py), else None: a renamed text or image goes no further than its first chunk."""
    enough = min(SNIFF_BYTES, length)
    if before >= enough or after < enough:
        return None
    part.seek(0)
    if looks_like_video(part.read(SNIFF_BYTES)):
        return None
    return "This file is not a video: its first bytes start none of MP4, MOV, MKV, WebM, AVI, MPEG, WMV or FLV."


def _write_chunk(part, found, digest):
    """Copy the request body to the upload's file at its offset; (bytes written, whether the body
    went past the declared length). A client that goes away keeps what arrived."""
    part.seek(found.offset)
    room, written = found.length - found.offset, 0
    with contextlib.suppress(OSError):  # the client went away: keep what arrived (checksums refuse it)
        while block := request.stream.read(BLOCK):
            if written + len(block) > room:
                return written, True
            part.write(block)
            if digest is not None:
                digest.update(block)
            written += len(block)
    return written, False


def _own_upload(upload_id):
    """(upload, None) for the staff member's live upload; (None, error response) otherwise."""
    found = db.session.get(Upload, upload_id) if len(upload_id) == 32 else None
    if found is None or found.staff_id != current_staff().id:
        return None, tus_error(404, "No such upload.")
    if as_utc(found.expires_at) < datetime.now(UTC):
        remove_upload(found)
        db.session.commit()
        return None, tus_error(410, "The upload expired; start again.")
    return found, None


def parse_metadata(header):
    """tus Upload-Metadata: `key base64value,key2 base64value2` -> dict, None when malformed."""
    metadata = {}
    for pair in filter(None, (item.strip() for item in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return metadata


def _non_negative_int(value):
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


def _new_expiry():
    return datetime.now(UTC) + timedelta(hours=current_app.config["UPLOAD_EXPIRY_HOURS"])


def _http_date(moment):
    return format_datetime(as_utc(moment).astimezone(UTC), usegmt=True)
