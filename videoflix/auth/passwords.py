"""Password rules of API.md, after Django's validators (the common-password list is Django's,
BSD licence: 19,640 passwords leaked in breaches)."""

import functools
import gzip
import re
from difflib import SequenceMatcher
from pathlib import Path

MIN_LENGTH = 8
MAX_SIMILARITY = 0.7
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt.gz")


@functools.cache
def common_passwords():
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines)


def _too_similar(password, email):
    password = password.lower()
    local, _, domain = email.lower().partition("@")
    for part in {email.lower(), local, *re.split(r"\W+", local), *domain.split(".")}:
        if len(part) < 3:
            continue
        if SequenceMatcher(a=password, b=part).ratio() >= MAX_SIMILARITY:
            return True
    return False


def password_problems(password, email=""):
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
