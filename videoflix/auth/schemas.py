from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validates_schema

from videoflix.auth.models import normalize_email
from videoflix.auth.passwords import password_problems
from videoflix.validation import STORABLE_TEXT

PASSWORDS_DO_NOT_MATCH = "Passwords do not match."


class BodySchema(Schema):
    class Meta:
        unknown = EXCLUDE


class RegisterSchema(BodySchema):
    email = fields.Email(required=True)
    password = fields.String(required=True, metadata=STORABLE_TEXT)
    confirmed_password = fields.String(required=True, metadata=STORABLE_TEXT)

    @pre_load
    def accept_password2_alias(self, data, **_kwargs):
        if "confirmed_password" not in data and "password2" in data:
            data = {**data, "confirmed_password": data["password2"]}
        if isinstance(data.get("email"), str):
            data = {**data, "email": normalize_email(data["email"])}
        return data

    @validates_schema
    def check_passwords(self, data, **_kwargs):
        errors = {}
        if data["password"] != data["confirmed_password"]:
            errors["confirmed_password"] = [PASSWORDS_DO_NOT_MATCH]
        problems = password_problems(data["password"], data["email"])
        if problems:
            errors["password"] = problems
        if errors:
            raise ValidationError(errors)


class NewPasswordSchema(BodySchema):
    """A new password for the account of `email` (which it must not resemble)."""

    new_password = fields.String(required=True, metadata=STORABLE_TEXT)
    confirm_password = fields.String(required=True, metadata=STORABLE_TEXT)

    def __init__(self, email="", **kwargs):
        super().__init__(**kwargs)
        self.email = email

    @validates_schema
    def check_passwords(self, data, **_kwargs):
        if data["new_password"] != data["confirm_password"]:
            raise ValidationError({"confirm_password": [PASSWORDS_DO_NOT_MATCH]})
        problems = password_problems(data["new_password"], self.email)
        if problems:
            raise ValidationError({"new_password": problems})


class EmailSchema(BodySchema):
    email = fields.Email(required=True)

    @post_load
    def normalize(self, data, **_kwargs):
        return {**data, "email": normalize_email(data["email"])}


class UserSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)


class LoginUserSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(attribute="email", required=True, metadata={"description": "The account's email."})
