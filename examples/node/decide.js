#!/usr/bin/env node
// Calls caseroute's RoutingService from Node.js with @grpc/grpc-js and @grpc/proto-loader: sends a
// ready request file, then an invalid request, and prints the google.rpc.BadRequest field
// violations the server puts in the `grpc-status-details-bin` trailer.
//
//   npm ci
//   node decide.js [--target HOST:PORT] [--request FILE] [--token-file F]
//                  [--tls-ca ca.pem [--tls-cert me.pem --tls-key me.key]]

import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protoFiles from "google-proto-files";

import { protoJsonReader } from "./protojson.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

const usage = `usage: node decide.js [--target HOST:PORT] [--request FILE] [--token-file F]
                      [--tls-ca ca.pem] [--tls-cert me.pem --tls-key me.key]`;
let args;
try {
  ({ values: args } = parseArgs({
    options: {
      target: { type: "string", default: "127.0.0.1:50051" },
      request: { type: "string", default: join(repo, "examples", "requests", "decide-clinical-tx.json") },
      // A caller token (docs/security.md, "Credentials"): sent as `authorization: Bearer <token>`.
      "token-file": { type: "string" },
      // TLS: the CA that signed the server's certificate (default: the system's roots); with
      // --tls-cert/--tls-key, mutual TLS.
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
    },
  }));
} catch (error) {
  console.error(`${error.message}\n${usage}`);
  process.exit(2);
}

// The protos come straight from the repository (no generated code); google/rpc/*.proto (Status,
// BadRequest) from google-proto-files, the googleapis protos published on npm by Google.
const packageDefinition = protoLoader.loadSync(
  ["caseroute/v1/routing.proto", "google/rpc/status.proto", "google/rpc/error_details.proto"],
  {
    keepCase: true, // field names as in the .proto and the JSON files: `request_id`, not `requestId`
    enums: String, // `OUTCOME_ASSIGN`, not 1
    longs: String, // int64 (Timestamp seconds) as strings: no precision lost
    defaults: true, // unset fields read as their default ("" / 0 / []), as in every other language
    oneofs: true, // a oneof's member name is readable as a virtual field
    includeDirs: [join(repo, "protos"), protoFiles.getProtoPath("..")],
  },
);
const caseroute = grpc.loadPackageDefinition(packageDefinition).caseroute.v1;
const Status = packageDefinition["google.rpc.Status"];
const BadRequest = packageDefinition["google.rpc.BadRequest"];

// The request file is in the protobuf JSON mapping; protojson.js says why it is read by hand.
const readProtoJson = protoJsonReader(join(repo, "protos"), "caseroute/v1/routing.proto");

function readRequest(typeName, path) {
  const text = readFileSync(path, "utf8");
  try {
    return readProtoJson(typeName, text);
  } catch (error) {
    throw new Error(`${path}: ${error.message}`);
  }
}

function channelCredentials() {
  const tls = args["tls-ca"] || args["tls-cert"] || args["tls-key"];
  if (!tls) return grpc.credentials.createInsecure();
  const read = (name) => (args[name] ? readFileSync(args[name]) : null);
  return grpc.credentials.createSsl(read("tls-ca"), read("tls-key"), read("tls-cert"));
}

function callMetadata() {
  const metadata = new grpc.Metadata();
  if (args["token-file"]) {
    const token = readFileSync(args["token-file"], "utf8").trim();
    metadata.set("authorization", `Bearer ${token}`);
  }
  return metadata;
}

// Everything read from files, before any call: a bad file stops here, saying which.
let request, credentials, metadata;
try {
  request = readRequest("caseroute.v1.DecideRequest", args.request);
  credentials = channelCredentials();
  metadata = callMetadata();
} catch (error) {
  console.error(`decide.js: ${error.message}`);
  process.exit(2);
}

// One unary call as a promise, with a deadline (a call without one can wait forever).
function call(client, method, request) {
  const deadline = new Date(Date.now() + 10_000);
  return new Promise((resolveCall, rejectCall) => {
    client[method](request, metadata, { deadline }, (error, response) =>
      error ? rejectCall(error) : resolveCall(response),
    );
  });
}

// The rich error model: grpc-status-details-bin holds a google.rpc.Status whose details are Any
// messages; INVALID_ARGUMENT from caseroute carries one google.rpc.BadRequest.
function fieldViolations(error) {
  const violations = [];
  for (const bytes of error.metadata?.get("grpc-status-details-bin") ?? []) {
    for (const detail of Status.deserialize(bytes).details) {
      if (detail.type_url === "type.googleapis.com/google.rpc.BadRequest") {
        violations.push(...BadRequest.deserialize(detail.value).field_violations);
      }
    }
  }
  return violations;
}

const client = new caseroute.RoutingService(args.target, credentials);
try {
  // 1. The ready request, exactly as grpcurl would send it.
  const { decision } = await call(client, "Decide", request);
  console.log(`Decide ${decision.case_id}`);
  console.log(`  outcome: ${decision.outcome}`);
  console.log(`  agent: ${decision.agent_id || "(none)"}`);
  console.log(`  reason codes: ${decision.reason_codes.join(", ")}`);
  console.log(`  decision id: ${decision.decision_id}`);
  console.log(`  ruleset: ${decision.ruleset.name} ${decision.ruleset.version}`);

  // 2. The same request with a negative capacity: refused, and the details say where.
  const invalid = structuredClone(request);
  invalid.request_id = `${request.request_id}-invalid`;
  if ((invalid.roster?.agents?.length ?? 0) < 2) {
    console.log("(the invalid request needs a roster of two agents or more: not sent)");
    process.exit();
  }
  invalid.roster.agents[1].capacity = { ...invalid.roster.agents[1].capacity, max: -1 };
  try {
    await call(client, "Decide", invalid);
    console.error("the invalid request was accepted; expected INVALID_ARGUMENT");
    process.exitCode = 1;
  } catch (error) {
    if (error.code !== grpc.status.INVALID_ARGUMENT) throw error;
    console.log("Decide with roster.agents[1].capacity.max = -1");
    console.log(`  status: ${grpc.status[error.code]}`);
    for (const violation of fieldViolations(error)) {
      console.log(`  field violation: ${violation.field}: ${violation.description}`);
    }
  }
} catch (error) {
  if (error.code === undefined) throw error; // a bug here, not an answer from the server
  console.error(`caseroute at ${args.target} answered ${grpc.status[error.code]}: ${error.details}`);
  if (error.code === grpc.status.UNAVAILABLE) {
    console.error("Is `caseroute serve` running there? Pass --target HOST:PORT (and --tls-ca if it speaks TLS).");
  } else if (error.code === grpc.status.UNAUTHENTICATED || error.code === grpc.status.PERMISSION_DENIED) {
    console.error("Pass --token-file with a caller token the server accepts (docs/security.md, \"Credentials\").");
  }
  process.exitCode = 1;
} finally {
  client.close();
}
