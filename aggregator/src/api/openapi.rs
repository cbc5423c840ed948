//! The OpenAPI 3.1 document, made from [`ROUTES`]: parameters as each
//! handler takes them, every status a route gives, the request schemas
//! below (which mirror the request structs in `service.rs` and `status.rs`)
//! and the reply schemas in `responses.rs`, with links between operations.
//! `tests/tests/contract.rs` holds the API to it with Schemathesis.

use axum::http::Method;
use serde_json::{Map, Value, json};
use suanli_protocol::identifier::{Industry, RegionCode};

use super::{Access, BODY_LIMIT, Param, ROUTES, Route};
use crate::{alerting, check::FieldProblem, i18n::Text, selection::demand, service::reservations};

mod responses;

pub fn openapi() -> Value {
    let replies = responses::schemas();
    let mut paths = Map::new();
    for route in ROUTES.iter() {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": path_schema(name)})
            })
            .collect();
        parameters.extend(route.query.iter().map(|(name, param, description)| {
            json!({"name": name, "in": "query", "required": false, "description": description,
                   "schema": param_schema(*param)})
        }));
        let (security, roles) = match route.access {
            Access::Public => (json!([]), json!(["public"])),
            Access::Roles(roles) => (
                json!([{"session": []}, {"bearer": []}]),
                roles.iter().map(|r| r.as_str()).collect::<Value>(),
            ),
        };
        let mut responses = Map::new();
        let mut success = json!({"description": route.success.1});
        if let Some(content) = success_content(route) {
            success["content"] = content;
        }
        let links = links(route, &replies);
        if !links.is_empty() {
            success["links"] = Value::Object(links);
        }
        responses.insert(route.success.0.to_string(), success);
        for status in error_statuses(route) {
            let answer = if status == 413 { "TooLarge" } else { "Problem" };
            responses.insert(
                status.to_string(),
                json!({"$ref": format!("#/components/responses/{answer}")}),
            );
        }
        let mut operation = json!({
            "summary": route.summary,
            "operationId": operation_id(route.method.as_str(), route.path),
            "x-roles": roles,
            "security": security,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(body) = route.body {
            operation["requestBody"] = json!({
                "required": true,
                "description": format!("at most {BODY_LIMIT} bytes; every body valid by the schema fits"),
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}
            });
        }
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    let mut schemas = REQUESTS.clone();
    if let (Some(all), Value::Object(replies)) = (schemas.as_object_mut(), replies) {
        all.extend(replies);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Suanli aggregator API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "算力互联互通节点: status, service center and monitoring. \
                            Sign in with POST /api/v1/session (cookie + X-CSRF-Token on changes) \
                            or send an API key as a bearer token. x-roles lists who may call each operation."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE},
                "bearer": {"type": "http", "scheme": "bearer"}
            },
            "responses": {
                "Problem": {
                    "description": "An RFC 9457 problem document",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                },
                "TooLarge": {
                    "description": format!("The request body is over {BODY_LIMIT} bytes, the limit for every request \
                                            (declared in Content-Length, or counted as it arrives). Every body valid \
                                            by its schema fits: the schemas bound every string, array and object."),
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                }
            },
            "schemas": schemas,
        }
    })
}

/// Every status a route can give besides its success: 400, 413 and 503
/// anywhere (a NUL in the URI, a declared body over the limit, a part of
/// the node down); 401 and 403 behind a role; 404 where the path, a query
/// parameter or the body names something; 409 where a change can meet the
/// node's state; 415 and 422 where a body or query parameters are read;
/// and the route's own.
fn error_statuses(route: &Route) -> Vec<u16> {
    let mut statuses = vec![400, 413, 503];
    if let Access::Roles(_) = route.access {
        statuses.extend([401, 403]);
    }
    // What a path, a filter or a body names may not exist.
    if route.path.contains('{') || !route.query.is_empty() || route.body.is_some() {
        statuses.push(404);
    }
    if !route.method.is_safe() {
        statuses.push(409);
    }
    if route.body.is_some() {
        statuses.extend([415, 422]);
    } else if !route.query.is_empty() {
        statuses.push(422);
    }
    statuses.extend(route.errors);
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// OpenAPI links from a route to those below it (`P` to `P/{x}…`): what
/// a create answers (`id`), or the first item of what a list answers,
/// names the thing the next call works on. Clients and Schemathesis's
/// stateful phase follow them.
fn links(route: &Route, replies: &Value) -> Map<String, Value> {
    let mut links = Map::new();
    let created = route.method == Method::POST && route.success.0 == 201;
    let listed = route.method == Method::GET;
    if !created && !listed {
        return links;
    }
    let prefix = format!("{}/{{", route.path);
    for target in ROUTES.iter().filter(|t| t.path.starts_with(&prefix)) {
        let Some(param) = target.path[prefix.len()..].split('}').next() else {
            continue;
        };
        let field = match param {
            "host" => "host_id",
            other => other,
        };
        let pointer = if created {
            if param != "id" {
                continue;
            }
            "/id".to_owned()
        } else {
            // The list is the reply's one array: `{"hosts": [...], "next_cursor": …}`.
            let Some(key) = route.reply.and_then(|name| {
                let properties = replies[name]["properties"].as_object()?;
                properties
                    .iter()
                    .find(|(_, p)| p["type"] == "array")
                    .map(|(k, _)| k.clone())
            }) else {
                continue;
            };
            format!("/{key}/0/{field}")
        };
        let target_id = operation_id(target.method.as_str(), target.path);
        links.insert(
            target_id.clone(),
            json!({"operationId": target_id,
                   "parameters": {format!("path.{param}"): format!("$response.body#{pointer}")}}),
        );
    }
    links
}

/// What a success carries: JSON by its schema, or the other media types.
fn success_content(route: &Route) -> Option<Value> {
    let path = route.path;
    if path == "/api/v1/openapi.json" {
        return Some(json!({"application/json": {"schema": {"type": "object"}}}));
    }
    if path.starts_with("/metrics") {
        return Some(json!({"application/openmetrics-text": {"schema": {"type": "string"}}}));
    }
    if path.ends_with("/live") {
        // Each event: `sample`, its data the host's figures as JSON.
        return Some(json!({"text/event-stream": {"schema": {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": "sample"},
                "data": {"type": "string", "contentMediaType": "application/json"},
            },
        }}}));
    }
    route.reply.map(|name| {
        json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}})
    })
}

/// A path parameter: ids are numbers; names, codes and identifiers are
/// looked up as given (one that no resource has is a 404, never a 400).
fn path_schema(name: &str) -> Value {
    match name {
        "id" => json!({"type": "integer", "format": "int64", "minimum": 1}),
        _ => json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL}),
    }
}

fn param_schema(param: Param) -> Value {
    match param {
        Param::Text => json!({"type": "string", "pattern": NO_NUL}),
        Param::Int(min, max) => {
            json!({"type": "integer", "format": "int64", "minimum": min, "maximum": max})
        }
        Param::OneOf(words) => json!({"type": "string", "enum": words}),
        Param::Flag => json!({"type": "boolean"}),
        Param::Pattern(pattern) => json!({"type": "string", "pattern": pattern}),
    }
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for segment in path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
    {
        id.push('_');
        id.push_str(
            &segment
                .trim_matches(|c| c == '{' || c == '}')
                .replace(['-', '.'], "_"),
        );
    }
    id
}

/// A request object: unknown fields are refused, and an optional field may
/// be `null` (read as absent).
fn object(required: &[&str], mut properties: Value) -> Value {
    if let Some(properties) = properties.as_object_mut() {
        for (name, schema) in properties.iter_mut() {
            if !required.contains(&name.as_str()) {
                *schema = nullable(std::mem::take(schema));
            }
        }
    }
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

/// A change names at least one field.
fn at_least_one(mut schema: Value) -> Value {
    schema["minProperties"] = json!(1);
    schema
}

fn nullable(mut schema: Value) -> Value {
    let listed = match schema.get_mut("enum").and_then(Value::as_array_mut) {
        Some(values) => {
            values.push(Value::Null);
            true
        }
        None => false,
    };
    match schema.get_mut("type") {
        Some(Value::String(one)) => {
            let one = std::mem::take(one);
            schema["type"] = json!([one, "null"]);
        }
        Some(Value::Array(many)) => many.push(json!("null")),
        None if listed => {}
        _ => return json!({"anyOf": [schema, {"type": "null"}]}),
    }
    schema
}

/// GB 32100's alphabet (no I, O, S, V, Z), the division digits in 3–8.
const USCC: &str =
    r"^\s*[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{10}\s*$";

/// No parameter holds a NUL (the router refuses one with a 400).
const NO_NUL: &str = r"^[^\u0000]*$";

/// A string that is not only spaces and holds no NUL.
const NONBLANK: &str = r"^[^\u0000]*[^\s\u0000][^\u0000]*$";

/// Text as `Check::text` takes it: at most `max` characters, no control
/// characters, not only spaces.
fn words(max: usize) -> Value {
    const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
    json!({"type": "string", "maxLength": max,
           "pattern": format!("^[^{CONTROL}]*[^{CONTROL}\\s][^{CONTROL}]*$")})
}

/// A string of at most `max` characters, however it is written.
fn bounded(max: usize) -> Value {
    json!({"type": "string", "maxLength": max})
}

/// A provider's code or credit code, as a body names one.
fn provider_code(description: &str) -> Value {
    json!({"type": "string", "maxLength": 32, "description": description})
}

/// Characters in a code a pattern also checks (region, industry, credit
/// code), room left for the spaces around it that the parsers trim.
const CODE_CHARS: usize = 32;
/// The longest node prefix: CN and seven segments of eight.
const NODE_PREFIX_CHARS: usize = 2 + 7 * 9;

/// The request schemas, made once: every body is checked against their
/// bounds ([`over_bounds`]) before it is read.
static REQUESTS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(schemas);

/// The request schema `name` in the document's `components.schemas`.
pub fn request_schema(name: &str) -> Option<&'static Value> {
    REQUESTS.get(name)
}

/// Every string, array and object in `value` larger than `schema` allows
/// (`maxLength` in characters, `maxItems`, `maxProperties`), named by its
/// path: the document's bounds, held in this one place for every body, so
/// that no handler takes more than the document promises to fit.
pub fn over_bounds(schema: &Value, value: &Value, field: &str, out: &mut Vec<FieldProblem>) {
    // An optional field is nullable: `anyOf: [schema, null]`.
    if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array) {
        for alternative in alternatives {
            over_bounds(alternative, value, field, out);
        }
        return;
    }
    let max = |key: &str| schema.get(key).and_then(Value::as_u64).map(|m| m as usize);
    let name = if field.is_empty() { "body" } else { field };
    match value {
        Value::String(text) => {
            if let Some(max) = max("maxLength")
                && text.chars().count() > max
            {
                out.push(FieldProblem::text(
                    name,
                    Text::new("check.too_long").arg("max", max),
                ));
            }
        }
        Value::Array(items) => match max("maxItems") {
            Some(max) if items.len() > max => {
                out.push(FieldProblem::text(
                    name,
                    Text::new("check.openapi.max_items").arg("max", max),
                ));
            }
            _ => {
                if let Some(each) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        over_bounds(each, item, &format!("{name}[{i}]"), out);
                    }
                }
            }
        },
        Value::Object(fields) => {
            if let Some(max) = max("maxProperties")
                && fields.len() > max
            {
                out.push(FieldProblem::text(
                    name,
                    Text::new("check.openapi.max_fields").arg("max", max),
                ));
            }
            for (key, item) in fields {
                if let Some(each) = schema.get("properties").and_then(|p| p.get(key)) {
                    let path = if field.is_empty() {
                        key.clone()
                    } else {
                        format!("{field}.{key}")
                    };
                    over_bounds(each, item, &path, out);
                }
            }
        }
        _ => {}
    }
}

fn schemas() -> Value {
    let text = json!({"type": "string"});
    let login = json!({"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9._@-]{3,64}$"});
    let password = json!({"type": "string", "minLength": crate::auth::MIN_PASSWORD_CHARS,
                          "maxLength": crate::check::MAX_PASSWORD_CHARS});
    let region = json!({"type": "string", "maxLength": CODE_CHARS, "pattern": RegionCode::pattern(), "description": "GB/T 2260, 6 digits"});
    let listed = json!({"type": "array", "maxItems": demand::MAX_LISTED,
                        "items": {"type": "string", "maxLength": demand::MAX_NAME_CHARS, "pattern": NONBLANK}});
    // Demand numbers: more than zero, below 10^12.
    let positive = json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e12});
    let cny = json!({
        "type": ["string", "number"],
        "maxLength": 16,
        "pattern": "^\\s*[0-9]+(\\.[0-9]{0,4})?\\s*$",
        "minimum": 0, "maximum": 1_000_000,
        "description": "yuan, at most 4 decimals, at most 1000000, e.g. \"18.50\""
    });
    let mut schemas = json!({
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": text, "title": text, "status": {"type": "integer"}, "detail": text,
                "errors": {"type": "array", "description": "422: every field that is wrong, at once",
                           "items": {"type": "object", "required": ["field", "message"], "properties": {"field": text, "message": text}}},
                "referral": {"type": "object", "description": "404 on an identifier outside this node: who holds its prefix"}
            }
        },
        "Login": object(&["login", "password"], json!({"login": bounded(64), "password": bounded(crate::check::MAX_PASSWORD_CHARS)})),
        "Registration": object(
            &["kind", "name", "uscc", "region", "industry", "contact", "login", "password"],
            json!({
                "kind": {"enum": ["provider", "reseller", "line_provider"]},
                "name": words(200),
                "uscc": {"type": "string", "maxLength": CODE_CHARS, "pattern": USCC, "description": "统一社会信用代码 (GB 32100): 18 characters, the last two check characters"},
                "accept_unverified_uscc": {"type": "boolean", "description": "file a code that fails its check character; only an administrator can approve it"},
                "region": region,
                "industry": {"type": "string", "maxLength": CODE_CHARS, "pattern": Industry::pattern(), "description": "GB/T 4754 section letter and division, e.g. I65"},
                "contact": words(200),
                "login": login,
                "password": password,
            }),
        ),
        "Review": object(&[], json!({"reason": words(500)})),
        "NodeToken": object(&["role"], json!({
            "role": {"enum": ["regional", "industry"]},
            "region": {"type": "string", "maxLength": CODE_CHARS, "description": "a regional node's province, GB/T 2260 two digits (e.g. 32)"},
            "industry": {"type": "string", "maxLength": CODE_CHARS, "description": "an industry node's industry, GB/T 4754 (e.g. I65)"},
            "ttl_hours": {"type": "integer", "minimum": 1, "maximum": 720},
        })),
        "NewAccount": object(&["login", "role"], json!({
            "login": login,
            "password": password,
            "role": {"enum": crate::auth::Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()},
            "provider": provider_code("provider code the account acts for"),
        })),
        "RoleChange": object(&["role"], json!({
            "role": {"enum": crate::auth::Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()},
            "provider": provider_code("provider code the account acts for"),
        })),
        "NewApiKey": object(&["name"], json!({"name": words(100), "ttl_days": {"type": "integer", "minimum": 1, "maximum": 365}})),
        "NewToken": object(&[], json!({
            "provider": provider_code("provider code; staff only, organisations get their own"),
            "region": {"type": "string", "maxLength": CODE_CHARS, "pattern": RegionCode::pattern(), "description": "GB/T 2260 code of the site the hosts are at (default: the provider's registered region)"},
            "ttl_hours": {"type": "integer", "minimum": 1, "maximum": 720},
            "uses": {"type": "integer", "minimum": 1, "maximum": 1000},
        })),
        "NewLine": object(&["name", "from_region", "to_region", "latency_ms", "bandwidth_mbps"], json!({
            "name": words(200),
            "from_region": region,
            "to_region": region,
            "latency_ms": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10_000},
            "bandwidth_mbps": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
            "price_per_mbps_month": words(50),
            "provider": provider_code("admin only: the line provider's code"),
        })),
        "LineChange": at_least_one(object(&[], json!({
            "state": {"enum": crate::service::lines::LINE_STATES},
            "latency_ms": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10_000},
            "bandwidth_mbps": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
            "price_per_mbps_month": words(50),
        }))),
        "Demand": object(&[], json!({
            "resource_type": {"enum": ["C", "A", "H", "V", "K", "S", "P", "general", "cpu", "ai", "accelerator", "gpu", "hpc", "supercomputing"],
                              "description": "C (general), A (AI accelerator), H (supercomputing); or general, ai, hpc"},
            "accelerator": object(&[], json!({
                "vendor": {"type": "string", "maxLength": 64, "pattern": NONBLANK, "description": "any of the vendor's names: nvidia, huawei (ascend, 华为, 昇腾), hygon (海光), amd, cambricon (寒武纪), iluvatar (天数), …"},
                "kind": {"type": "string", "enum": ["gpu", "npu", "mlu", "dcu", "xpu", "gcu"], "description": "what the vendor calls the device"},
                "model": {"type": "string", "maxLength": 64, "pattern": NONBLANK, "description": "whole words of the model name: H100 finds NVIDIA H100 80GB HBM3; a word ending in a letter also finds its numbered variants: 910B finds Ascend 910B3"},
                "count": {"type": "integer", "minimum": 1, "maximum": 64, "description": "per host"},
                "min_memory_gib": positive,
                "min_free_memory_gib": positive,
                "nvlink": {"type": "boolean"},
                "infiniband_gbps": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e12, "description": "an ACTIVE InfiniBand port at least this fast"},
                "mig": {"type": "boolean"},
            })),
            "cpu_cores": {"type": "integer", "minimum": 1, "maximum": 1 << 20},
            "memory_gib": positive,
            "disk_gib": positive,
            "hosts": {"type": "integer", "minimum": 1, "maximum": crate::selection::demand::MAX_HOSTS, "description": "all or nothing"},
            "together": {"enum": ["anywhere", "region", "provider", "fabric"], "description": "other than anywhere, with hosts of 2 or more or a total capacity"},
            "capacity": responses::described(object(&["precision", "tflops"], json!({
                "precision": {"enum": crate::capacity::Precision::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>()},
                "tflops": {"type": "number", "exclusiveMinimum": 0, "maximum": demand::MAX_CAPACITY_TFLOPS, "description": "TOPS for int8"},
            })), "a total the answer's hosts must reach together at one precision (dense peak, 算力度量): as many hosts as it takes, each giving the rated resources it lists (accelerator.count of them); not with hosts"),
            "region": {"type": "string", "maxLength": CODE_CHARS, "pattern": RegionCode::prefix_pattern(), "description": "GB/T 2260 prefix: 2 (a province that exists), 4 or 6 digits"},
            "user_region": {"type": "string", "maxLength": CODE_CHARS, "pattern": RegionCode::pattern(), "description": "where the user is (GB/T 2260, 6 digits); needed by max_latency_ms and min_bandwidth_mbps"},
            "max_latency_ms": positive,
            "min_bandwidth_mbps": {"type": "integer", "minimum": 1, "maximum": 1_i64 << 40},
            "providers": listed,
            "industries": listed,
            "architecture": {"enum": ["x86_64", "amd64", "x86", "x86-64", "aarch64", "arm64", "arm", "riscv64", "riscv", "rv", "loongarch64", "loongarch", "la"],
                             "description": "the hosts' instruction set: x86_64, aarch64 (arm64: Kunpeng, Phytium), loongarch64, riscv64"},
            "max_staleness_s": positive,
            "max_price_per_hour_cny": cny,
            "availability": {"enum": ["free_now", "installed"]},
            "expression": {"type": "string", "pattern": NONBLANK, "maxLength": demand::MAX_EXPRESSION_CHARS, "description": "CEL over `host` and `gpus`, e.g. host.cpus >= 64 && gpus.all(g, g.temperature_celsius < 80)"},
            "limit": {"type": "integer", "minimum": 1, "maximum": crate::selection::demand::MAX_LIMIT},
            "scope": {"type": "string", "maxLength": NODE_PREFIX_CHARS, "pattern": "^(subtree|local|[Cc][Nn](\\.[0-9A-Za-z]{1,8}){0,7})$",
                      "description": "which nodes answer: subtree (this node and every node below it, the default), local (this node only), or a node prefix (that node's subtree)"},
            "exclude_nodes": {"type": "array", "maxItems": demand::MAX_LISTED,
                              "items": {"type": "string", "maxLength": demand::MAX_NAME_CHARS, "pattern": "^[Cc][Nn](\\.[0-9A-Za-z]{1,8}){1,7}$"},
                              "description": "node prefixes below this node whose subtrees are left out"},
            "deadline_ms": {"type": "integer", "minimum": demand::MIN_DEADLINE_MS, "maximum": demand::MAX_DEADLINE_MS,
                            "description": "how long the answer waits for nodes below this one (default 3000); each level asks its children a tenth sooner"},
        })),
        "HoldRequest": object(&["node", "resources", "request_id"], json!({
            "node": {"type": "string", "maxLength": NODE_PREFIX_CHARS, "pattern": "^[Cc][Nn](\\.[0-9A-Za-z]{1,8}){0,7}$", "description": "the candidate's node: the prefix of the node holding the host"},
            "resources": {"type": "array", "minItems": 1, "maxItems": reservations::MAX_HELD,
                          "items": {"type": "string", "maxLength": 128, "pattern": NONBLANK}, "description": "identifiers of the candidate's accelerators, all on one host"},
            "seconds": {"type": "integer", "minimum": reservations::MIN_HOLD_SECONDS, "maximum": reservations::MAX_HOLD_SECONDS, "description": "how long to hold (default 900)"},
            "request_id": {"type": "string", "minLength": 1, "maxLength": reservations::MAX_REQUEST_ID_CHARS, "pattern": NO_NUL, "description": "the client's id for this request: sent again, it answers the same hold"},
        })),
        "PriceList": object(&["prices"], json!({
            "prices": {"type": "array", "maxItems": crate::service::prices::MAX_PRICES, "items": object(&["resource", "per_hour_cny"], json!({
                "resource": {"enum": ["accelerator", "cpu"], "description": "accelerator: per accelerator-hour; cpu: per logical-core-hour"},
                "model": {"type": "string", "maxLength": 24, "description": "accelerator only: words its name must contain (H100); absent for any model"},
                "per_hour_cny": cny,
            }))},
        })),
        "Interval": object(&["interval_ms"], json!({"interval_ms": {"type": "integer", "minimum": 100, "maximum": 3600000}})),
        "Silence": object(&["matchers", "reason"], json!({
            "matchers": {"type": "array", "minItems": 1, "maxItems": alerting::MAX_MATCHERS, "items": object(&["name", "value"], json!({
                "name": {"type": "string", "minLength": 1, "maxLength": alerting::MAX_MATCHER_NAME_CHARS, "description": "a label: alertname, severity, hostname, provider, region, identifier, gpu, uuid, xid, mount, port"},
                "value": {"type": "string", "maxLength": alerting::MAX_MATCHER_VALUE_CHARS},
                "op": {"enum": ["=", "!=", "=~", "!~"], "description": "=~ and !~ match the whole value as a regular expression"},
            }))},
            "starts_at_ms": {"type": "integer", "description": "unix milliseconds; now if absent"},
            "ends_at_ms": {"type": "integer", "description": "unix milliseconds; or give duration"},
            "duration": {"type": "string", "maxLength": 32, "description": "e.g. 2h"},
            "reason": words(500),
        })),
        "NewReceiver": object(&["name", "kind", "url"], json!({
            "name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "letters of any script (运维-钉钉), digits and . _ -"},
            "kind": {"enum": alerting::RECEIVER_KINDS},
            "url": {"type": "string", "format": "uri", "maxLength": 2000, "description": "https; plain http only to loopback where the node allows it. email: smtp+starttls://[user@]host[:587]?to=a@x,b@y[&from=…] or smtps://…:465 (smtp:// only to a loopback relay); the password is the secret"},
            "secret": {"type": "string", "minLength": 1, "maxLength": 500, "description": "DingTalk or Feishu signing secret (required for them); the webhook's HMAC key; the SMTP password. Never shown again."},
            "mentions": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 20, "pattern": "^[0-9+]{5,20}$"}, "description": "mobile numbers to @ (DingTalk, WeCom)"},
            "min_severity": {"enum": ["info", "warning", "critical"]},
            "repeat_interval": {"type": "string", "maxLength": 32, "description": "how often a still-firing alert is told again, from 1s to 30 days (e.g. 4h; Alertmanager's repeat_interval); the node's repeat_interval when not given"},
            "provider": provider_code("administrator only: the provider whose hosts it serves"),
        })),
        "Transfer": object(&["provider"], json!({
            "provider": {"type": "string", "maxLength": 32, "pattern": NO_NUL, "description": "the receiving provider's code or credit code"},
        })),
        "Reason": object(&["reason"], json!({"reason": words(500)})),
    });
    // Beside the rest: one more entry above would pass json!'s recursion limit.
    schemas["PasswordChange"] = object(
        &["password", "new_password"],
        json!({
            "password": {"type": "string", "maxLength": crate::check::MAX_PASSWORD_CHARS, "description": "the current password"},
            "new_password": password,
        }),
    );
    for (name, example) in examples() {
        schemas[name]["examples"] = json!([example]);
    }
    schemas
}

/// A request of each kind as a client would send it: for readers of the
/// document, and the first thing Schemathesis sends (its examples phase).
fn examples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Login",
            json!({"login": "ops", "password": "correct horse battery"}),
        ),
        (
            "Registration",
            json!({
                "kind": "provider", "name": "成都算力有限公司", "uscc": "91440300708461136T",
                "region": "510107", "industry": "I65", "contact": "王五 13800000000",
                "login": "chengdu", "password": "a long enough password",
            }),
        ),
        ("Review", json!({"reason": "材料齐全"})),
        (
            "NodeToken",
            json!({"role": "industry", "industry": "M73", "ttl_hours": 24}),
        ),
        (
            "NewAccount",
            json!({"login": "duty", "role": "operator", "password": "a long enough password"}),
        ),
        ("RoleChange", json!({"role": "viewer"})),
        (
            "PasswordChange",
            json!({"password": "the generated password", "new_password": "a long enough new password"}),
        ),
        ("NewApiKey", json!({"name": "巡检脚本", "ttl_days": 30})),
        (
            "NewToken",
            json!({"provider": "P00001", "region": "510107", "ttl_hours": 24, "uses": 10}),
        ),
        (
            "NewLine",
            json!({
                "name": "成渝第二专线", "from_region": "510107", "to_region": "500103",
                "latency_ms": 5.5, "bandwidth_mbps": 10000, "price_per_mbps_month": "28", "provider": "P00003",
            }),
        ),
        ("LineChange", json!({"state": "maintenance"})),
        (
            "Demand",
            json!({
                "resource_type": "A", "accelerator": {"vendor": "nvidia", "model": "H100", "count": 8},
                "user_region": "510107", "max_latency_ms": 20, "limit": 5,
            }),
        ),
        (
            "PriceList",
            json!({"prices": [
                {"resource": "accelerator", "model": "H100", "per_hour_cny": "18.50"},
                {"resource": "cpu", "per_hour_cny": "0.12"},
            ]}),
        ),
        ("Interval", json!({"interval_ms": 1000})),
        (
            "Silence",
            json!({
                "matchers": [{"name": "hostname", "value": "gpu-0[1-4]", "op": "=~"}],
                "duration": "2h", "reason": "机房维护",
            }),
        ),
        (
            "NewReceiver",
            json!({
                "name": "duty-webhook", "kind": "webhook", "url": "https://hooks.example.invalid/suanli",
                "secret": "an HMAC key", "min_severity": "warning",
            }),
        ),
        ("Transfer", json!({"provider": "P00001"})),
        ("Reason", json!({"reason": "证书随旧硬盘一同报废"})),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_once_with_its_roles() {
        let doc = openapi();
        let mut documented = 0;
        for route in ROUTES.iter() {
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} missing", route.method, route.path);
            assert!(op["x-roles"].as_array().is_some_and(|r| !r.is_empty()));
            for schema in route.body.iter().chain(&route.reply) {
                assert!(
                    doc["components"]["schemas"][schema].is_object(),
                    "schema {schema}"
                );
            }
            documented += 1;
        }
        let in_doc: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(in_doc, documented);
    }

    /// Every `pattern` in the document, wherever it sits.
    fn patterns(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(p)) = map.get("pattern") {
                    out.push(p.clone());
                }
                map.values().for_each(|v| patterns(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| patterns(v, out)),
            _ => {}
        }
    }

    /// The most bytes a value valid by `schema` can take as JSON, written
    /// the roomiest way a client might: every character escaped as a
    /// surrogate pair (`\ud83d\ude00`, 12 bytes), Python's `", "` and
    /// `": "` separators. `None` where nothing bounds it.
    fn most_bytes(schema: &Value) -> Option<usize> {
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return values.iter().map(|v| Some(v.to_string().len())).max()?;
        }
        if let Some(alternatives) = schema.get("anyOf").and_then(Value::as_array) {
            return alternatives.iter().map(most_bytes).max()?;
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(one) => vec![one],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => return None,
        };
        let separated = |items: usize, each: usize| 2 + items * each + 2 * items.saturating_sub(1);
        types
            .iter()
            .map(|kind| match *kind {
                "null" => Some(4),
                "boolean" => Some(5),
                // i64::MIN, and a double written in full (-1.7976931348623157e+308).
                "integer" => Some(20),
                "number" => Some(24),
                "string" => Some(2 + 12 * schema["maxLength"].as_u64()? as usize),
                "array" => Some(separated(
                    schema["maxItems"].as_u64()? as usize,
                    most_bytes(&schema["items"])?,
                )),
                "object" => {
                    if schema["additionalProperties"] != false {
                        return None;
                    }
                    let fields = schema["properties"].as_object()?;
                    let each: usize = fields
                        .iter()
                        .map(|(name, value)| Some(name.len() + 4 + most_bytes(value)?))
                        .sum::<Option<usize>>()?;
                    Some(separated(1, each) + 2 * fields.len().saturating_sub(1))
                }
                _ => None,
            })
            .max()?
    }

    /// Any body valid by its schema fits the body limit, however it is
    /// written: every string, array and object in every request schema is
    /// bounded, and the bounds add up to less than `BODY_LIMIT`.
    #[test]
    fn every_schema_valid_body_fits_the_body_limit() {
        let mut sizes = Vec::new();
        for route in ROUTES.iter() {
            let Some(name) = route.body else { continue };
            let schema = request_schema(name).unwrap();
            let most = most_bytes(schema)
                .unwrap_or_else(|| panic!("{name}: a string, array or object without a bound"));
            assert!(
                most <= BODY_LIMIT,
                "{name}: up to {most} bytes, over the {BODY_LIMIT} byte limit"
            );
            sizes.push((most, name));
        }
        sizes.sort_unstable();
        // The largest, for whoever next adds a field: cargo test -- --nocapture
        println!("largest request bodies: {:?}", &sizes[sizes.len() - 3..]);
    }

    #[test]
    fn bodies_over_a_bound_are_named_field_by_field() {
        let demand = request_schema("Demand").unwrap();
        let mut problems = Vec::new();
        let body = json!({
            "accelerator": {"model": "长".repeat(65)},
            "providers": ["P00001", "x".repeat(33)],
            "industries": vec!["I65"; 21],
        });
        over_bounds(demand, &body, "", &mut problems);
        let named: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("accelerator.model", "at most 64 characters"),
                ("industries", "at most 20 items"),
                ("providers[1]", "at most 32 characters"),
            ]
        );
        // Characters, not bytes: 64 of them in three bytes each fit.
        let mut problems = Vec::new();
        over_bounds(
            demand,
            &json!({"accelerator": {"model": "长".repeat(64)}}),
            "",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn every_pattern_is_a_regular_expression() {
        let mut found = Vec::new();
        patterns(&openapi(), &mut found);
        assert!(found.len() > 20, "{found:?}");
        for p in found {
            regex::Regex::new(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn the_code_patterns_take_exactly_what_the_parsers_take() {
        let industry = regex::Regex::new(&Industry::pattern()).unwrap();
        let region = regex::Regex::new(&RegionCode::pattern()).unwrap();
        for letter in ('A'..='Z').chain('a'..='z') {
            for division in 0..100 {
                let code = format!("{letter}{division:02}");
                assert_eq!(
                    industry.is_match(&code),
                    Industry::parse(&code).is_ok(),
                    "{code}"
                );
            }
        }
        for province in 0..100 {
            for rest in ["0000", "0108", "9999"] {
                let code = format!("{province:02}{rest}");
                assert_eq!(
                    region.is_match(&code),
                    RegionCode::parse(&code).is_ok(),
                    "{code}"
                );
            }
        }
        for odd in ["I650", "I6", "", "1101080", "11010"] {
            assert!(!industry.is_match(odd) && !region.is_match(odd), "{odd}");
        }
        let prefix = regex::Regex::new(&RegionCode::prefix_pattern()).unwrap();
        for province in 0..100 {
            for rest in ["", "01", "0108", "1", "010", "01080"] {
                let code = format!("{province:02}{rest}");
                assert_eq!(
                    prefix.is_match(&code),
                    RegionCode::is_prefix(&code),
                    "{code}"
                );
            }
        }
        // A credit code failing only its check characters fits the pattern
        // (the API then answers 422, or files it unverified when asked).
        let uscc = regex::Regex::new(USCC).unwrap();
        for code in [
            "91350100M000100Y43",
            " 91350100m000100y43 ",
            "91350100M000100Y44",
        ] {
            assert!(uscc.is_match(code), "{code}");
        }
        for code in [
            "91350100M000100Y4",
            "9135010OM000100Y43",
            "91AB0100M000100Y43",
        ] {
            assert!(!uscc.is_match(code), "{code}");
        }
    }

    #[test]
    fn every_json_reply_has_a_schema_and_creations_link_to_their_uses() {
        let doc = openapi();
        for route in ROUTES.iter() {
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            let success = &op["responses"][route.success.0.to_string()];
            let has_body = !matches!(route.success.0, 202 | 204);
            assert_eq!(
                success["content"].is_object(),
                has_body,
                "{} {}",
                route.method,
                route.path
            );
            for status in ["400", "413", "503"] {
                assert!(op["responses"][status].is_object(), "{}", route.path);
            }
        }
        let keys = &doc["paths"]["/api/v1/api-keys"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            keys["delete_api_keys_id"]["parameters"]["path.id"],
            "$response.body#/id"
        );
        let hosts = &doc["paths"]["/api/v1/hosts"]["get"]["responses"]["200"]["links"];
        assert_eq!(
            hosts["get_hosts_host"]["parameters"]["path.host"],
            "$response.body#/hosts/0/host_id"
        );
    }
}
