"""Media in an S3-compatible bucket (S3_BUCKET set): AWS S3, SeaweedFS, MinIO, Ceph...

The same keys as the disk store, under an optional S3_PREFIX. Web and worker machines share
nothing but the bucket: uploads stream from this machine's scratch folder into the bucket
(multipart above MULTIPART_BYTES), a job downloads its source into its own scratch folder and
publishes a finished rendition folder by uploading it under a new version prefix; the video's
row points at a version only once every object of it is stored, so nobody sees half of one.

Every failure to reach the bucket becomes StorageUnavailable with a sentence staff can act on."""

import concurrent.futures
import contextlib
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from cachetools import TTLCache

from videoflix.storage.errors import RangeNotSatisfiable, StorageUnavailable
from videoflix.storage.keys import content_type
from videoflix.storage.local import ScratchFolders, StoredObject

MULTIPART_BYTES = 64 * 2**20  # parts of this size, so an upload never sits in memory whole
TRANSFER = TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES, max_concurrency=4)
PUBLISH_THREADS = 8  # a rendition folder is hundreds of small objects: upload them side by side
DELETE_BATCH = 1000  # the most DeleteObjects takes at once
# nginx fetches an object with a presigned URL; one URL serves every request for the object for
# PRESIGNED_REUSE_SECONDS (signing costs ~0.3 ms, a dict lookup nothing) and stays valid twice as long.
PRESIGNED_REUSE_SECONDS = 600
MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Storage(ScratchFolders):
    name = "s3"

    def __init__(self, scratch_root, bucket, prefix="", endpoint_url=None, region="us-east-1", access_key=None,
                 secret_key=None):  # fmt: skip
        super().__init__(scratch_root)
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix and prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"} if endpoint_url else {},  # self-hosted stores: no DNS per bucket
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=3,
                read_timeout=60,
                max_pool_connections=32,
            ),
        )
        self._presigned = TTLCache(maxsize=16384, ttl=PRESIGNED_REUSE_SECONDS)
        self._presigned_lock = threading.Lock()

    def describe(self):
        return f"bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'}"

    def object_name(self, key):
        return self.prefix + key

    @contextlib.contextmanager
    def _reaching(self, what):
        """Turn the client's failures into StorageUnavailable naming what was being done."""
        try:
            yield
        except Boto3Error as error:  # boto3's transfers wrap the client's error
            if isinstance(error.__context__, ClientError | BotoCoreError):
                raise self._unavailable(error.__context__, what) from None
            raise StorageUnavailable(f"The media store ({self.describe()}) failed to {what}: {error}") from None
        except (ClientError, BotoCoreError) as error:
            raise self._unavailable(error, what) from None

    def _unavailable(self, error, what):
        if isinstance(error, BotoCoreError):
            return StorageUnavailable(f"The media store ({self.describe()}) could not be reached to {what}: {error}")
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            reason = "refused the credentials (check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY)"
        elif code == "NoSuchBucket" or (what == "check" and code in MISSING):
            reason = "has no such bucket (create it, or check S3_BUCKET)"
        else:
            reason = f"answered {status} {code}"
        return StorageUnavailable(f"The media store ({self.describe()}) {reason} while trying to {what}.")

    def check(self):
        with self._reaching("check"):
            self.client.head_bucket(Bucket=self.bucket)

    def create_bucket(self):
        """Create the bucket if it does not exist yet (`flask media create-bucket`); True if it did."""
        with contextlib.suppress(StorageUnavailable):
            self.check()
            return False
        with self._reaching("create the bucket"):
            self.client.create_bucket(Bucket=self.bucket)
        return True

    # --- writing ---

    def put_file(self, key, source):
        """Upload the local file `source` as `key`, streamed from disk (multipart when large). A failed
        multipart upload is aborted by the transfer manager, so no parts stay behind."""
        with self._reaching(f"store {key}"):
            self.client.upload_file(
                str(source), self.bucket, self.object_name(key), ExtraArgs={"ContentType": content_type(key)},
                Config=TRANSFER,
            )  # fmt: skip

    def put_tree(self, folder, prefix):
        """Upload every file of the local `folder` under `prefix`. On a failure what was uploaded is
        removed (a sweep removes it if even that fails) and StorageUnavailable raised."""
        folder = Path(folder)
        files = [path for path in folder.rglob("*") if path.is_file()]
        with concurrent.futures.ThreadPoolExecutor(PUBLISH_THREADS) as pool:
            uploads = [pool.submit(self.put_file, f"{prefix}/{p.relative_to(folder).as_posix()}", p) for p in files]
            try:
                for upload in concurrent.futures.as_completed(uploads):
                    upload.result()
            except BaseException:
                for upload in uploads:
                    upload.cancel()
                concurrent.futures.wait(uploads)
                with contextlib.suppress(StorageUnavailable):
                    self.delete_prefix(prefix)
                raise

    # --- reading ---

    def exists(self, key):
        return self.size(key) is not None

    def size(self, key):
        """The object's size in bytes; None when there is no such object."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))["ContentLength"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in MISSING:
                return None
            with self._reaching(f"look up {key}"):
                raise

    @contextlib.contextmanager
    def local_file(self, key, folder=None):
        """A local copy of `key` for ffmpeg to read, in `folder` (a job's workspace, which goes with
        the job even if its worker is killed) or this machine's scratch folder; removed afterwards."""
        local = Path(folder or self.work_root()) / f"download-{uuid.uuid4().hex}{Path(key).suffix}"
        try:
            try:
                with self._reaching(f"fetch {key}"):
                    self.client.download_file(self.bucket, self.object_name(key), str(local), Config=TRANSFER)
            except StorageUnavailable as error:
                cause = error.__context__
                if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in MISSING:
                    raise FileNotFoundError(f"The stored file {key} is missing from the media store.") from None
                raise
            yield local
        finally:
            local.unlink(missing_ok=True)

    def get(self, key, byte_range=None):
        """The object's GetObject answer (Body streams); None when there is no such object."""
        extra = {"Range": byte_range} if byte_range else {}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.object_name(key), **extra)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in MISSING:
                return None
            if code == "InvalidRange":
                raise RangeNotSatisfiable() from None
            with self._reaching(f"fetch {key}"):
                raise
        except BotoCoreError:
            with self._reaching(f"fetch {key}"):
                raise

    def redirect_target(self, key, cors):
        """What follows the proxy's internal location for `key`: `cors` or `plain` (whether the app
        allowed the request's origin: nginx adds the CORS headers then, as the bucket answers), and
        the presigned URL's path and query for the bucket. Nothing is asked of the bucket here; a
        missing object is the bucket's 404."""
        with self._presigned_lock:
            url = self._presigned.get(key)
        if url is None:
            url = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.object_name(key)},
                ExpiresIn=2 * PRESIGNED_REUSE_SECONDS,
            )
            with self._presigned_lock:
                self._presigned[key] = url
        parts = urlsplit(url)
        return f"{'cors' if cors else 'plain'}{parts.path}?{parts.query}"

    def list(self, prefix):
        """A StoredObject for every object under the folder `prefix`."""
        paginator = self.client.get_paginator("list_objects_v2")
        with self._reaching(f"list {prefix}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.object_name(prefix)}/"):
                for item in page.get("Contents", ()):
                    yield StoredObject(item["Key"][len(self.prefix) :], item["LastModified"], item["Size"])

    # --- removing ---

    def delete(self, key):
        if key:
            with self._reaching(f"delete {key}"):
                self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key))

    def delete_prefix(self, prefix):
        """Every object under the folder `prefix` (`hls/1` never touches `hls/10`)."""
        names = [self.object_name(stored.key) for stored in self.list(prefix)]
        for start in range(0, len(names), DELETE_BATCH):
            batch = [{"Key": name} for name in names[start : start + DELETE_BATCH]]
            with self._reaching(f"delete {prefix}"):
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
