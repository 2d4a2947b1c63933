"""The operations' `Parameters`: `$cancel` and `$withdraw` take one `reason` (valueString)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.parameters import Parameters

from adapters.fhir.outcome import invalid_element
from adapters.fhir.parsing import resource_type, validated

MAX_REASON = 500  # as /v1's `reason`


def reason_of(data: dict[str, Any]) -> str:
    resource_type(data, "Parameters")
    parameters = validated(Parameters, data)
    for index, parameter in enumerate(parameters.parameter or []):
        if parameter.name == "reason":
            reason = parameter.valueString
            if not isinstance(reason, str) or len(reason) > MAX_REASON:
                raise invalid_element(
                    f"reason is a valueString of {MAX_REASON} characters at most",
                    f"Parameters.parameter[{index}].valueString",
                )
            return reason
    raise invalid_element("the parameter 'reason' is missing", "Parameters.parameter")
