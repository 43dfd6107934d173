"""Shared pydantic base and bounded string types used by every API model.

Fields are camelCase on the wire (Kubernetes convention) and snake_case in Python. Unknown
fields are refused: a typo in a manifest is an error, not silently ignored.
"""

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from pht_contract.quantities import QUANTITY_PATTERN

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SHA256_HEX = r"^[a-f0-9]{64}$"
CAMEL_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
DnsLabel = Annotated[str, Field(pattern=DNS_LABEL, min_length=1, max_length=63)]
Sha256Hex = Annotated[str, Field(pattern=SHA256_HEX, min_length=64, max_length=64)]
Iri = Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>\"{}|^`\\]*$", max_length=512)]
ShortText = Annotated[str, Field(min_length=1, max_length=256)]
Timestamp = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
LabelKey = Annotated[str, Field(min_length=1, max_length=253)]
LabelValue = Annotated[str, Field(max_length=63)]


class ApiModel(BaseModel):
    """Base of all contract models: camelCase aliases, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
    )

    #: CEL rules (``x-kubernetes-validations``) emitted into the CRD for this object.
    cel_rules: ClassVar[tuple[tuple[str, str], ...]] = ()

    def wire(self) -> dict[str, Any]:
        """The object as it appears in Kubernetes or on the wire (camelCase, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
