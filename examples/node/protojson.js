// Reads a message written in the protobuf JSON mapping (what grpcurl, Postman and caseroute's
// examples/requests/*.json use) into the plain object @grpc/proto-loader sends.
//
// Why by hand: proto-loader (protobufjs) reads plain objects, not the JSON mapping: a Timestamp
// must be {seconds, nanos} (an RFC 3339 string throws), and an unknown field or enum name is
// dropped without a word, so a misspelt `"flgs"` would send a case without its flags.
// @bufbuild/protobuf implements the mapping, but needs descriptors as protoc writes them, and
// the ones protobufjs builds from .proto files are not (one file per package, relative type
// names). This walks protobufjs's own reflection instead: it refuses unknown fields, unknown
// enum names, wrong JSON types and keys given twice, naming the field path, and turns RFC 3339
// strings into Timestamps. Scalars are then converted by protobufjs when the call is sent. It
// covers what caseroute.v1 uses (messages, maps, lists, enums, scalars, Timestamp); other
// well-known types (Duration, Struct, wrappers) would be refused as "expected a JSON object".

import { join } from "node:path";

import jsonc from "jsonc-parser";
import protobuf from "protobufjs";

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;
const JSON_TYPES = {
  double: "number", float: "number", int32: "number", uint32: "number", sint32: "number",
  fixed32: "number", sfixed32: "number", int64: "number", uint64: "number", sint64: "number",
  fixed64: "number", sfixed64: "number", bool: "boolean", string: "string", bytes: "string",
};

export class ProtoJsonError extends Error {}

/** Loads `file` (relative to `protosDir`) and returns `read(typeName, jsonText)`. */
export function protoJsonReader(protosDir, file) {
  const root = new protobuf.Root();
  // Imports are relative to the protos directory, as for protoc's -I; google/protobuf/*.proto
  // are built into protobufjs.
  root.resolvePath = (_origin, target) => join(protosDir, target);
  root.loadSync(file, { keepCase: true }).resolveAll();
  return (typeName, text) => readMessage(root.lookupType(typeName), parseStrictJson(text), "");
}

// JSON.parse keeps the last of two equal keys without a word, so `"flags": ["safeguarding"]`
// followed by `"flags": []` would send no flags; jsonc-parser (VS Code's JSON parser) gives the
// syntax tree, in which a repeated key is seen and refused.
function parseStrictJson(text) {
  const errors = [];
  const tree = jsonc.parseTree(text, errors, { disallowComments: true, allowTrailingComma: false });
  if (errors.length > 0 || tree === undefined) {
    const { error, offset } = errors[0] ?? { error: jsonc.ParseErrorCode.ValueExpected, offset: 0 };
    const line = text.slice(0, offset).split("\n").length;
    throw new ProtoJsonError(`not valid JSON: ${jsonc.printParseErrorCode(error)} at line ${line}`);
  }
  rejectRepeatedKeys(tree, "");
  return jsonc.getNodeValue(tree);
}

function rejectRepeatedKeys(node, path) {
  if (node.type === "object") {
    const seen = new Set();
    for (const [key, value] of node.children.map((property) => property.children)) {
      const at = path ? `${path}.${key.value}` : key.value;
      if (seen.has(key.value)) {
        throw new ProtoJsonError(`${at}: the key appears twice in one object; write it once`);
      }
      seen.add(key.value);
      if (value) rejectRepeatedKeys(value, at);
    }
  } else if (node.type === "array") {
    node.children.forEach((child, i) => rejectRepeatedKeys(child, `${path}[${i}]`));
  }
}

function readMessage(type, json, path) {
  if (type.fullName === ".google.protobuf.Timestamp") return readTimestamp(json, path);
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ProtoJsonError(`${path || "request"}: expected a JSON object (${type.name})`);
  }
  const message = {};
  const oneofsSet = {};
  for (const [key, value] of Object.entries(json)) {
    const field = Object.hasOwn(type.fields, key)
      ? type.fields[key]
      : type.fieldsArray.find((f) => lowerCamel(f.name) === key);
    const at = path ? `${path}.${field?.name ?? key}` : field?.name ?? key;
    if (!field) {
      throw new ProtoJsonError(`${at}: no such field in ${type.fullName.slice(1)}; check the spelling against the .proto`);
    }
    if (Object.hasOwn(message, field.name)) {
      throw new ProtoJsonError(`${at}: given twice (as ${field.name} and ${lowerCamel(field.name)}); write it once`);
    }
    if (value === null) continue; // JSON null: the field's default
    const oneof = field.partOf?.name;
    if (oneof && !oneof.startsWith("_")) {
      if (oneofsSet[oneof]) throw new ProtoJsonError(`${at}: ${oneofsSet[oneof]} is already set; oneof ${oneof} takes one`);
      oneofsSet[oneof] = field.name;
    }
    if (field.map) {
      if (typeof value !== "object" || Array.isArray(value)) throw new ProtoJsonError(`${at}: expected a JSON object (a map)`);
      message[field.name] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, readValue(field, v, `${at}[${JSON.stringify(k)}]`)]),
      );
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new ProtoJsonError(`${at}: expected a JSON array`);
      message[field.name] = value.map((v, i) => readValue(field, v, `${at}[${i}]`));
    } else {
      message[field.name] = readValue(field, value, at);
    }
  }
  return message;
}

function readValue(field, value, path) {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return readMessage(resolved, value, path);
  if (resolved instanceof protobuf.Enum) {
    if (typeof value === "string" && value in resolved.values) return value;
    if (Number.isInteger(value)) return value;
    const names = Object.keys(resolved.values).join(", ");
    throw new ProtoJsonError(`${path}: ${JSON.stringify(value)} is not a ${resolved.name}; use one of ${names}`);
  }
  const expected = JSON_TYPES[field.type];
  // The mapping writes 64-bit integers and special floats ("NaN") as strings, and accepts numbers
  // as strings for every numeric type.
  const numericString = expected === "number" && typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value.replace(/^(-?Infinity|NaN)$/, "0")));
  if (typeof value !== expected && !numericString) {
    throw new ProtoJsonError(`${path}: expected a JSON ${expected} (${field.type}), got ${JSON.stringify(value)}`);
  }
  return value;
}

function readTimestamp(value, path) {
  const match = typeof value === "string" ? RFC3339.exec(value) : null;
  const millis = match ? Date.parse(`${match[1]}${match[3]}`) : Number.NaN;
  if (Number.isNaN(millis)) {
    throw new ProtoJsonError(`${path}: expected an RFC 3339 time such as "2026-11-21T10:00:00Z", got ${JSON.stringify(value)}`);
  }
  return { seconds: String(millis / 1000), nanos: Number((match[2] ?? "").padEnd(9, "0")) };
}

function lowerCamel(name) {
  return name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}
