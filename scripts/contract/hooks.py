import schemathesis


def _integral_floats_as_ints(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_integral_floats_as_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    return value


# JSON Schema counts 5.0 as an integer; the gateway reads integer fields
# strictly (serde refuses 5.0 where it expects an integer) and every client
# we ship sends 5. Send integral numbers the way clients do.
@schemathesis.hook
def map_body(ctx, body):
    return _integral_floats_as_ints(body)
