#!/usr/bin/env python3
"""Generates the Unity SDK's C# from the gateway's OpenAPI document.

Usage:
    python3 clients/unity/generator/generate.py SOURCE [OUT_DIR]

SOURCE is a file path or an http(s) URL of `/v1/openapi.json`; OUT_DIR
defaults to `clients/unity/Runtime/Generated`. Three files are written:

- `Models.cs`: one class per component schema (request and response
  bodies, push payloads), with `Validate()` on the ones a client sends.
- `VdmClient.Routes.cs`: a typed async method of `VdmClient` per REST route.
- `Pushes.cs`: the contract version, the push names, and a typed event of
  `VdmSocket` per push listed under `x-vdm-pushes`.

The output depends only on the document: keys are sorted and formatting
is fixed, so CI can regenerate and compare byte for byte. Python 3's
standard library only, so CI needs nothing installed to run it.
"""

import json
import os
import re
import sys
import urllib.request

GENERATOR = "clients/unity/generator/generate.py"
NAMESPACE = "Vdm.Client"

# C# keywords that cannot be parameter names as they are.
KEYWORDS = {
    "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class",
    "const", "continue", "decimal", "default", "delegate", "do", "double", "else", "enum", "event",
    "explicit", "extern", "false", "finally", "fixed", "float", "for", "foreach", "goto", "if",
    "implicit", "in", "int", "interface", "internal", "is", "lock", "long", "namespace", "new", "null",
    "object", "operator", "out", "override", "params", "private", "protected", "public", "readonly",
    "ref", "return", "sbyte", "sealed", "short", "sizeof", "stackalloc", "static", "string", "struct",
    "switch", "this", "throw", "true", "try", "typeof", "uint", "ulong", "unchecked", "unsafe",
    "ushort", "using", "virtual", "void", "volatile", "while",
}

VALUE_TYPES = {"long", "int", "double", "bool"}


def load(source):
    """Returns the document's exact bytes: the contract version hashes them."""
    if re.match(r"^https?://", source):
        with urllib.request.urlopen(source, timeout=30) as response:
            return response.read()
    with open(source, "rb") as f:
        return f.read()


def contract_version(raw):
    """`v1-` and the FNV-1a (64-bit) of the served document, as the
    gateway computes it (crates/vdm-gateway/src/pushes.rs)."""
    h = 0xCBF29CE484222325
    for byte in raw:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "v1-%016x" % h


def pascal(name):
    parts = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(p[:1].upper() + p[1:] for p in parts if p)


def camel(name):
    p = pascal(name)
    result = p[:1].lower() + p[1:]
    return "@" + result if result in KEYWORDS else result


def class_name(schema_name):
    """`QuestJson` -> `Quest`; `ListJson_QuestJson` -> `QuestPage`."""
    m = re.match(r"^ListJson_(.+)$", schema_name)
    if m:
        return class_name(m.group(1)) + "Page"
    return re.sub(r"Json$", "", schema_name) or schema_name


def ref_name(ref):
    return ref.rsplit("/", 1)[-1]


def xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def doc(lines, text, indent):
    if not text:
        return
    lines.append(indent + "/// <summary>")
    for line in text.strip().splitlines():
        lines.append((indent + "/// " + xml(line.strip())).rstrip())
    lines.append(indent + "/// </summary>")


def cs_string(value):
    return json.dumps(value, ensure_ascii=True)


def cs_number(value):
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    return text if ("." in text or "e" in text) else text + ".0"


class Contract:
    def __init__(self, document):
        self.document = document
        self.schemas = document.get("components", {}).get("schemas", {})
        self.names = {}
        for name in sorted(self.schemas):
            cname = class_name(name)
            if cname in self.names.values():
                raise SystemExit("two schemas map to the C# class %s" % cname)
            self.names[name] = cname

    def is_enum_schema(self, name):
        s = self.schemas[name]
        return "enum" in s and s.get("type") == "string"

    def nullable_parts(self, schema):
        """Splits `type: [T, null]` and `oneOf: [X, {type: null}]` into the
        non-null schema and whether null is allowed."""
        if "oneOf" in schema:
            options = [o for o in schema["oneOf"] if o.get("type") != "null"]
            if len(options) == 1 and len(options) < len(schema["oneOf"]):
                merged = dict(options[0])
                return merged, True
        t = schema.get("type")
        if isinstance(t, list):
            rest = [x for x in t if x != "null"]
            copy = dict(schema)
            copy["type"] = rest[0] if len(rest) == 1 else rest
            return copy, "null" in t
        return schema, False

    def cs_type(self, schema):
        """The C# type of a schema (never nullable here; callers add `?`)."""
        schema, _ = self.nullable_parts(schema)
        if "$ref" in schema:
            name = ref_name(schema["$ref"])
            if self.is_enum_schema(name):
                return "string"
            return self.names[name]
        t = schema.get("type")
        if t == "integer":
            return "int" if schema.get("format") == "int32" else "long"
        if t == "number":
            return "double"
        if t == "boolean":
            return "bool"
        if t == "string":
            return "string"
        if t == "array":
            return "List<%s>" % self.cs_type(schema.get("items", {}))
        if t == "object":
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and not schema.get("properties"):
                return "Dictionary<string, %s>" % self.cs_type(extra)
            return "JObject"
        return "JToken"

    def enum_values(self, schema):
        schema, _ = self.nullable_parts(schema)
        if "$ref" in schema:
            target = self.schemas[ref_name(schema["$ref"])]
            return target.get("enum")
        return schema.get("enum")

    def sent_models(self):
        """Schemas a client sends (request bodies and what they contain):
        these get `Validate()`."""
        roots = []
        for path, ops in self.document.get("paths", {}).items():
            for op in ops.values():
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
                if "$ref" in body.get("schema", {}):
                    roots.append(ref_name(body["schema"]["$ref"]))
        seen = set()
        stack = list(roots)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(self.refs_in(self.schemas[name]))
        return seen

    def refs_in(self, schema):
        found = []
        if isinstance(schema, dict):
            if "$ref" in schema:
                found.append(ref_name(schema["$ref"]))
            for value in schema.values():
                found.extend(self.refs_in(value))
        elif isinstance(schema, list):
            for value in schema:
                found.extend(self.refs_in(value))
        return found


HEADER = """// <auto-generated>
// Generated by {generator} from the vdm contract {version}.
// Do not edit: change the server's contract and run the generator again
// (clients/unity/check.sh fails when this file and the contract differ).
// </auto-generated>
"""


def header(version, usings):
    lines = [HEADER.format(generator=GENERATOR, version=version).rstrip("\n"), ""]
    for u in usings:
        lines.append("using %s;" % u)
    lines += ["", "namespace %s" % NAMESPACE, "{"]
    return lines


def checks_for(contract, schema, value, path, depth=0):
    """C# statements that check `value` (a non-null, unwrapped C# expression)
    against the constraints of `schema`, naming it by `path` (a C# string
    expression). Cheap checks only: the server checks again, these save a
    round trip and name the field before anything is sent."""
    inner, _ = contract.nullable_parts(schema)
    if "$ref" in inner and not contract.is_enum_schema(ref_name(inner["$ref"])):
        return ["%s.Validate(%s);" % (value, path)]
    if "$ref" in inner:
        inner = contract.schemas[ref_name(inner["$ref"])]
    out = []
    # Only the checks the C# type can express: a schema that allows several
    # types (a JToken here) is left to the server.
    ctype = contract.cs_type(inner)
    is_number = ctype in ("long", "int", "double")
    is_string = ctype == "string"
    is_list = ctype.startswith("List<")
    is_map = ctype.startswith("Dictionary<")

    def number(op, bound, words):
        out.append("if (%s %s %s) throw new ArgumentOutOfRangeException(%s, %s, %s + \" must be %s %s\");" % (
            value, op, cs_number(bound), path, value, path, words, cs_number(bound)))

    def sized(prop, op, bound, words):
        out.append("if (%s.%s %s %d) throw new ArgumentException(%s + \" must have %s %d\", %s);" % (
            value, prop, op, bound, path, words, bound, path))

    if is_number and isinstance(inner.get("minimum"), (int, float)):
        number("<", inner["minimum"], "at least")
    if is_number and isinstance(inner.get("maximum"), (int, float)):
        number(">", inner["maximum"], "at most")
    if is_number and isinstance(inner.get("exclusiveMinimum"), (int, float)) and not isinstance(inner.get("exclusiveMinimum"), bool):
        number("<=", inner["exclusiveMinimum"], "more than")
    if is_number and isinstance(inner.get("exclusiveMaximum"), (int, float)) and not isinstance(inner.get("exclusiveMaximum"), bool):
        number(">=", inner["exclusiveMaximum"], "less than")
    if is_string and "minLength" in inner:
        sized("Length", "<", inner["minLength"], "at least", )
        out[-1] = out[-1].replace("must have at least %d\"" % inner["minLength"], "must have at least %d characters\"" % inner["minLength"])
    if is_string and "maxLength" in inner:
        sized("Length", ">", inner["maxLength"], "at most")
        out[-1] = out[-1].replace("must have at most %d\"" % inner["maxLength"], "must have at most %d characters\"" % inner["maxLength"])
    if is_string and "pattern" in inner:
        out.append("if (!Regex.IsMatch(%s, %s, RegexOptions.CultureInvariant)) throw new ArgumentException(%s + %s, %s);" % (
            value, cs_string(inner["pattern"]), path, cs_string(" must match " + inner["pattern"]), path))
    values = contract.enum_values(schema)
    if is_string and values and all(isinstance(v, str) for v in values):
        out.append("if (Array.IndexOf(new[] { %s }, %s) < 0) throw new ArgumentException(%s + %s, %s);" % (
            ", ".join(cs_string(v) for v in values), value, path, cs_string(" must be one of " + "|".join(values)), path))
    for key, prop, op, words in (("minItems", "Count", "<", "at least"), ("maxItems", "Count", ">", "at most"),
                                 ("minProperties", "Count", "<", "at least"), ("maxProperties", "Count", ">", "at most")):
        if key in inner and (is_list if "Items" in key else is_map):
            unit = "items" if "Items" in key else "entries"
            out.append("if (%s.%s %s %d) throw new ArgumentException(%s + \" must have %s %d %s\", %s);" % (
                value, prop, op, inner[key], path, words, inner[key], unit, path))
    item_var = "i%d" % depth
    if is_list and isinstance(inner.get("items"), dict):
        items = inner["items"]
        item_type = contract.cs_type(items)
        element = "%s[%s]" % (value, item_var)
        element_path = "%s + \"[\" + %s + \"]\"" % (path, item_var)
        body = checks_for(contract, items, element, element_path, depth + 1)
        if body:
            loop = ["for (var %s = 0; %s < %s.Count; %s++)" % (item_var, item_var, value, item_var), "{"]
            if item_type not in VALUE_TYPES:
                loop.append("    if (%s == null) throw new ArgumentException(%s + \" is required\", %s);" % (element, element_path, element_path))
            loop += ["    " + b for b in body] + ["}"]
            out += loop
    extra = inner.get("additionalProperties")
    if is_map:
        entry = "e%d" % depth
        entry_path = "%s + \".\" + %s.Key" % (path, entry)
        body = checks_for(contract, inner.get("propertyNames", {}), "%s.Key" % entry, entry_path, depth + 1)
        body += checks_for(contract, extra, "%s.Value" % entry, entry_path, depth + 1)
        if body:
            out += ["foreach (var %s in %s)" % (entry, value), "{"] + ["    " + b for b in body] + ["}"]
    return out


def emit_checks(lines, checks, guard, indent):
    if not checks:
        return
    if guard:
        lines.append(indent + "if (%s)" % guard)
        lines.append(indent + "{")
        for c in checks:
            lines.append(indent + "    " + c)
        lines.append(indent + "}")
    else:
        for c in checks:
            lines.append(indent + c)


def validation(contract, lines, prop_name, json_name, schema, required, cs_type, indent):
    """The checks of one property of a sent model."""
    path = "Prefix(path, %s)" % cs_string(json_name)
    is_value = cs_type in VALUE_TYPES
    if required and not is_value:
        lines.append(indent + "if (%s == null) throw new ArgumentException(%s + \" is required\", %s);" % (prop_name, path, path))
    access = prop_name + ".Value" if (is_value and not required) else prop_name
    guard = None if (is_value or required) else "%s != null" % prop_name
    if is_value and not required:
        guard = "%s.HasValue" % prop_name
    emit_checks(lines, checks_for(contract, schema, access, path), guard, indent)


def generate_models(contract, version):
    lines = header(version, ["System", "System.Collections.Generic", "System.Text.RegularExpressions", "Newtonsoft.Json", "Newtonsoft.Json.Linq"])
    sent = contract.sent_models()
    first = True
    for name in sorted(contract.schemas):
        schema = contract.schemas[name]
        cname = contract.names[name]
        if not first:
            lines.append("")
        first = False
        if contract.is_enum_schema(name):
            # String constants, not a C# enum: a value added by a newer
            # server then reaches an older game as a string instead of
            # failing the whole answer's deserialization.
            doc(lines, schema.get("description", ""), "    ")
            lines.append("    public static class %s" % cname)
            lines.append("    {")
            for value in schema["enum"]:
                lines.append("        public const string %s = %s;" % (pascal(value), cs_string(value)))
            lines.append("")
            lines.append("        /// <summary>Every value the contract lists, in its order.</summary>")
            lines.append("        public static readonly IReadOnlyList<string> All = new[] { %s };" % ", ".join(cs_string(v) for v in schema["enum"]))
            lines.append("    }")
            continue
        base = None
        props = dict(schema.get("properties", {}))
        required = set(schema.get("required", []))
        if "allOf" in schema:
            for part in schema["allOf"]:
                if "$ref" in part and base is None:
                    base = contract.names[ref_name(part["$ref"])]
                    continue
                # C# has one base class: the other parts are copied in.
                if "$ref" in part:
                    part = contract.schemas[ref_name(part["$ref"])]
                props.update(part.get("properties", {}))
                required.update(part.get("required", []))
        doc(lines, schema.get("description", ""), "    ")
        lines.append("    public partial class %s%s" % (cname, " : " + base if base else ""))
        lines.append("    {")
        members = []
        for json_name in sorted(props):
            prop = props[json_name]
            pname = pascal(json_name)
            if pname == cname:
                pname += "Value"
            ctype = contract.cs_type(prop)
            _, nullable = contract.nullable_parts(prop)
            is_required = json_name in required and not nullable
            declared = ctype + ("?" if ctype in VALUE_TYPES and not is_required else "")
            members.append((json_name, pname, prop, is_required, ctype))
            desc = prop.get("description", "")
            if not desc:
                inner, _ = contract.nullable_parts(prop)
                if "$ref" in inner:
                    desc = contract.schemas[ref_name(inner["$ref"])].get("description", "").split("\n")[0]
            doc(lines, desc, "        ")
            # Required fields are always written; optional ones are left
            # out when null, as the server leaves out absent fields.
            lines.append("        [JsonProperty(%s)]" % cs_string(json_name))
            initial = ""
            if name not in sent and (ctype.startswith("List<") or ctype.startswith("Dictionary<")):
                # The server leaves empty lists out of its answers; an
                # empty list here spares every caller a null check.
                initial = " = new %s();" % ctype
            lines.append("        public %s %s { get; set; }%s" % (declared, pname, initial))
            lines.append("")
        if name in sent:
            lines.append("        /// <summary>")
            lines.append("        /// Checks the constraints the contract states for this body (required")
            lines.append("        /// fields, lengths, ranges, enums) and throws an ArgumentException naming")
            lines.append("        /// the first field that breaks one.")
            lines.append("        /// </summary>")
            lines.append("        public %svoid Validate(string path = null)" % ("new " if base else ""))
            lines.append("        {")
            if base:
                lines.append("            base.Validate(path);")
            for json_name, pname, prop, is_required, ctype in members:
                validation(contract, lines, pname, json_name, prop, is_required, ctype, "            ")
            lines.append("        }")
            lines.append("")
            lines.append("        private static string Prefix(string path, string field)")
            lines.append("        {")
            lines.append("            return string.IsNullOrEmpty(path) ? field : path + \".\" + field;")
            lines.append("        }")
        elif lines[-1] == "":
            lines.pop()
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def auth_of(op):
    security = op.get("security")
    if not security:
        return "VdmAuth.None"
    schemes = set()
    for requirement in security:
        schemes.update(requirement.keys())
    if "session" in schemes and "admin" in schemes:
        return "VdmAuth.SessionOrAdmin"
    if "admin" in schemes:
        return "VdmAuth.Admin"
    return "VdmAuth.Session"


def response_of(contract, op):
    """The C# return type of a route's success answer, and how it is read:
    `json`, `text` or `none`."""
    for code in sorted(op.get("responses", {})):
        if not code.startswith("2"):
            continue
        content = op["responses"][code].get("content", {})
        if not content:
            return None, "none"
        if "application/json" in content:
            return contract.cs_type(content["application/json"].get("schema", {})), "json"
        return "string", "text"
    return None, "none"


def param_check(contract, lines, var, schema, indent, required):
    """The checks of one path or query parameter of a route method."""
    ctype = contract.cs_type(schema)
    is_value = ctype in VALUE_TYPES
    name = cs_string(var.lstrip("@"))
    if required and not is_value:
        lines.append(indent + "if (%s == null) throw new ArgumentNullException(%s);" % (var, name))
    access = var + ".Value" if (is_value and not required) else var
    guard = None
    if not required:
        guard = "%s.HasValue" % var if is_value else "%s != null" % var
    emit_checks(lines, checks_for(contract, schema, access, name), guard, indent)


def generate_routes(contract, version):
    lines = header(version, ["System", "System.Collections.Generic", "System.Text.RegularExpressions", "System.Threading", "System.Threading.Tasks", "Newtonsoft.Json.Linq"])
    lines.append("    public partial class VdmClient")
    lines.append("    {")
    ops = []
    for path in sorted(contract.document.get("paths", {})):
        for method in sorted(contract.document["paths"][path]):
            op = contract.document["paths"][path][method]
            if path == "/v1/ws":
                continue  # the socket: VdmSocket, not a REST call
            ops.append((op.get("operationId") or pascal(method + " " + path), method.upper(), path, op))
    ops.sort(key=lambda o: o[0])
    first = True
    for op_id, method, path, op in ops:
        if not first:
            lines.append("")
        first = False
        params = op.get("parameters", [])
        path_params = [p for p in params if p["in"] == "path"]
        query_params = [p for p in params if p["in"] == "query"]
        header_params = [p for p in params if p["in"] == "header"]
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        body_required = op.get("requestBody", {}).get("required", False)
        body_type = contract.cs_type(body["schema"]) if body else None
        ret, reading = response_of(contract, op)
        auth = auth_of(op)
        summary = op.get("summary") or op.get("description", "").split("\n")[0]
        desc = "%s (%s %s)." % (summary.rstrip("."), method, path) if summary else "%s %s." % (method, path)
        who = {"VdmAuth.None": "Anyone may call it.", "VdmAuth.Session": "Needs a player session.",
               "VdmAuth.Admin": "Needs the admin token (AdminToken).",
               "VdmAuth.SessionOrAdmin": "Needs a player session or the admin token."}[auth]
        doc(lines, desc + "\n" + who, "        ")
        signature = []
        for p in path_params:
            signature.append("%s %s" % (contract.cs_type(p["schema"]), camel(p["name"])))
        if body:
            signature.append("%s body" % body_type)
        for p in [q for q in query_params if q.get("required")]:
            signature.append("%s %s" % (contract.cs_type(p["schema"]), camel(p["name"])))
        for p in [q for q in query_params if not q.get("required")]:
            t = contract.cs_type(p["schema"])
            signature.append("%s%s %s = null" % (t, "?" if t in VALUE_TYPES else "", camel(p["name"])))
        for p in header_params:
            signature.append("string %s = null" % camel(p["name"]))
        signature.append("CancellationToken cancellationToken = default(CancellationToken)")
        task = "Task<%s>" % ret if ret else "Task"
        lines.append("        public %s %sAsync(%s)" % (task, pascal(op_id), ", ".join(signature)))
        lines.append("        {")
        ind = "            "
        for p in path_params:
            param_check(contract, lines, camel(p["name"]), p["schema"], ind, True)
        if body:
            if body_required:
                lines.append(ind + "if (body == null) throw new ArgumentNullException(\"body\");")
            if "$ref" in body["schema"]:
                lines.append(ind + "body%s.Validate();" % ("" if body_required else "?"))
        for p in query_params:
            param_check(contract, lines, camel(p["name"]), p["schema"], ind, bool(p.get("required")))
        template = path
        path_expr = cs_string(template)
        for p in path_params:
            path_expr = path_expr.replace("{%s}" % p["name"], "\" + Segment(%s) + \"" % camel(p["name"]))
        path_expr = path_expr.replace(' + ""', "")
        lines.append(ind + "var request = new VdmRequest(%s, %s, %s, %s, %s);" % (
            cs_string(method), path_expr, cs_string(template), cs_string(op_id), auth))
        for p in query_params:
            lines.append(ind + "request.AddQuery(%s, %s);" % (cs_string(p["name"]), camel(p["name"])))
        for p in header_params:
            lines.append(ind + "request.AddHeader(%s, %s);" % (cs_string(p["name"]), camel(p["name"])))
        if body:
            lines.append(ind + "request.Body = body;")
        if reading == "none":
            lines.append(ind + "return SendAsync(request, cancellationToken);")
        elif reading == "text":
            lines.append(ind + "return SendTextAsync(request, cancellationToken);")
        else:
            lines.append(ind + "return SendAsync<%s>(request, cancellationToken);" % ret)
        lines.append("        }")
    lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate_pushes(contract, version):
    pushes = contract.document.get("x-vdm-pushes", {})
    lines = header(version, ["System", "System.Collections.Generic", "Newtonsoft.Json.Linq"])
    lines.append("    /// <summary>")
    lines.append("    /// The contract this SDK was generated from: the socket sends it on")
    lines.append("    /// connect, and a server with another contract closes with 4001.")
    lines.append("    /// </summary>")
    lines.append("    public static class VdmContract")
    lines.append("    {")
    lines.append("        /// <summary>`v1-` and the FNV-1a of the server's /v1/openapi.json.</summary>")
    lines.append("        public const string Version = %s;" % cs_string(version))
    lines.append("    }")
    lines.append("")
    lines.append("    /// <summary>The names of every push a socket may receive.</summary>")
    lines.append("    public static class VdmPushes")
    lines.append("    {")
    for name in sorted(pushes):
        lines.append("        public const string %s = %s;" % (pascal(name), cs_string(name)))
    lines.append("")
    lines.append("        /// <summary>Every push name the contract lists.</summary>")
    lines.append("        public static readonly IReadOnlyList<string> All = new[] { %s };" % ", ".join(cs_string(n) for n in sorted(pushes)))
    lines.append("    }")
    lines.append("")
    lines.append("    public partial class VdmSocket")
    lines.append("    {")
    for name in sorted(pushes):
        payload = contract.names[ref_name(pushes[name]["$ref"])]
        description = contract.schemas[ref_name(pushes[name]["$ref"])].get("description", "").split("\n")[0]
        description = re.sub(r"^`%s`:\s*" % re.escape(name), "", description)
        lines.append("        /// <summary>")
        lines.append("        /// `%s` push: %s" % (name, xml(description)))
        lines.append("        /// Raised once per push, in seq order, on the context the socket was created on.")
        lines.append("        /// </summary>")
        lines.append("        public event Action<%s> %s;" % (payload, pascal(name)))
        lines.append("")
    lines.append("        /// <summary>Raises the typed event of a push; false for a push this SDK does not know.</summary>")
    lines.append("        private bool DispatchPush(string name, JToken payload)")
    lines.append("        {")
    lines.append("            switch (name)")
    lines.append("            {")
    for name in sorted(pushes):
        payload = contract.names[ref_name(pushes[name]["$ref"])]
        lines.append("                case %s:" % cs_string(name))
        lines.append("                    Raise(%s, payload.ToObject<%s>(VdmJson.Serializer));" % (pascal(name), payload))
        lines.append("                    return true;")
    lines.append("                default:")
    lines.append("                    return false;")
    lines.append("            }")
    lines.append("        }")
    lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 2
    raw = load(argv[1])
    here = os.path.dirname(os.path.abspath(__file__))
    out = argv[2] if len(argv) > 2 else os.path.join(here, "..", "Runtime", "Generated")
    document = json.loads(raw.decode("utf-8"))
    version = contract_version(raw)
    contract = Contract(document)
    os.makedirs(out, exist_ok=True)
    files = {
        "Models.cs": generate_models(contract, version),
        "VdmClient.Routes.cs": generate_routes(contract, version),
        "Pushes.cs": generate_pushes(contract, version),
    }
    for name in sorted(files):
        with open(os.path.join(out, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(files[name])
    print("generated %s from contract %s into %s" % (", ".join(sorted(files)), version, os.path.normpath(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
