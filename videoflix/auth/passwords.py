"""Password rules of API.md, after Django's validators (the common-password list is Django's,
BSD licence: 19,640 passwords leaked in breaches)."""

import functools
import gzip
import re
from difflib import SequenceMatcher
from pathlib import Path

MIN_LENGTH = 8
# Bounds what one request can make the server do (the similarity check, the hash): Django and the
# large frameworks cap passwords at 4,096 bytes too.
MAX_BYTES = 4096
MAX_SIMILARITY = 0.7
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt.gz")


@functools.cache
def common_passwords():
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines)


def too_long(password):
    return len(password) > MAX_BYTES or len(password.encode("utf-8", "surrogatepass")) > MAX_BYTES


def _similarity_impossible(password, part):
    """Django's bound: a password ten times longer than the part, which is also short against the
    password, cannot reach MAX_SIMILARITY; such pairs are never compared."""
    return len(password) >= 10 * len(part) and len(part) < MAX_SIMILARITY / 2 * len(password)


def _too_similar(password, email):
    """As Django's UserAttributeSimilarityValidator, with its cheap upper bounds first:
    real_quick_ratio is O(1) and quick_ratio linear, so the quadratic ratio() only runs on pairs
    of similar length and letters."""
    password = password.lower()
    local, _, domain = email.lower().partition("@")
    for part in {email.lower(), local, *re.split(r"\W+", local), *domain.split(".")}:
        if len(part) < 3 or _similarity_impossible(password, part):
            continue
        matcher = SequenceMatcher(a=password, b=part)
        if (
            matcher.real_quick_ratio() >= MAX_SIMILARITY
            and matcher.quick_ratio() >= MAX_SIMILARITY
            and matcher.ratio() >= MAX_SIMILARITY
        ):
            return True
    return False


def password_problems(password, email=""):
    """What is wrong with `password` for the account of `email`; empty when it is acceptable."""
    if too_long(password):
        return [f"This password is too long. It must contain at most {MAX_BYTES} bytes."]
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"This password is too short. It must contain at least {MIN_LENGTH} characters.")
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    if password.lower().strip() in common_passwords():
        problems.append("This password is too common.")
    if email and _too_similar(password, email):
        problems.append("The password is too similar to the email.")
    return problems
