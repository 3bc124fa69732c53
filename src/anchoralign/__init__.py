"""anchoralign: generative joint named-entity recognition and relation extraction with anchor alignment."""

from .errors import InputError
from .schema import Schema
from .types import Document, Entity, Relation, Token

__all__ = ["Document", "Entity", "Relation", "Token", "Schema", "InputError"]
__version__ = "0.1.0"
