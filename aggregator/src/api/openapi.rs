//! The OpenAPI 3.1 document, made from [`ROUTES`] and the request schemas
//! below (which mirror the request structs in `service.rs` and `status.rs`;
//! the API tests send each documented body and check it is accepted).

use serde_json::{Map, Value, json};

use super::{Access, ROUTES};

pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in ROUTES.iter() {
        let mut parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(route.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false, "description": description,
                   "schema": {"type": "string"}})
        }));
        let (security, roles) = match route.access {
            Access::Public => (json!([]), json!(["public"])),
            Access::Roles(roles) => (
                json!([{"session": []}, {"bearer": []}]),
                roles.iter().map(|r| r.as_str()).collect::<Value>(),
            ),
        };
        let mut responses = Map::new();
        responses.insert(
            route.success.0.to_string(),
            json!({"description": route.success.1}),
        );
        let mut errors = vec![400, 404, 413, 422, 429, 503];
        if let Access::Roles(_) = route.access {
            errors.extend([401, 403]);
        }
        for status in errors {
            responses.insert(
                status.to_string(),
                json!({"$ref": "#/components/responses/Problem"}),
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
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}
            });
        }
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
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
                }
            },
            "schemas": schemas(),
        }
    })
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

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

fn schemas() -> Value {
    let text = json!({"type": "string"});
    json!({
        "Problem": {
            "type": "object",
            "properties": {
                "type": text, "title": text, "status": {"type": "integer"}, "detail": text,
                "errors": {"type": "array", "items": {"type": "object", "properties": {"field": text, "message": text}}}
            }
        },
        "Login": object(&["login", "password"], json!({"login": text, "password": text})),
        "Registration": object(
            &["kind", "name", "uscc", "region", "industry", "contact", "login", "password"],
            json!({
                "kind": {"enum": ["provider", "reseller", "line_provider"]},
                "name": text,
                "uscc": {"type": "string", "description": "统一社会信用代码, 18 characters with check character"},
                "accept_unverified_uscc": {"type": "boolean", "description": "file a code that fails its check character; only an administrator can approve it"},
                "region": {"type": "string", "description": "GB/T 2260, 6 digits"},
                "industry": {"type": "string", "description": "GB/T 4754 section letter and division, e.g. I65"},
                "contact": text,
                "login": text,
                "password": {"type": "string", "minLength": crate::auth::MIN_PASSWORD_CHARS},
            }),
        ),
        "Review": object(&[], json!({"reason": text})),
        "NodeToken": object(&["role"], json!({
            "role": {"enum": ["regional", "industry"]},
            "region": {"type": "string", "description": "a regional node's province, GB/T 2260 two digits (e.g. 32)"},
            "industry": {"type": "string", "description": "an industry node's industry, GB/T 4754 (e.g. I65)"},
            "ttl_hours": {"type": "integer", "minimum": 1, "maximum": 720},
        })),
        "NewAccount": object(&["login", "role"], json!({
            "login": text,
            "password": {"type": "string", "minLength": crate::auth::MIN_PASSWORD_CHARS},
            "role": {"enum": crate::auth::Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()},
            "provider": {"type": "string", "description": "provider code the account acts for"},
        })),
        "RoleChange": object(&["role"], json!({
            "role": {"enum": crate::auth::Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()},
            "provider": text,
        })),
        "NewApiKey": object(&["name"], json!({"name": text, "ttl_days": {"type": "integer", "minimum": 1, "maximum": 365}})),
        "NewToken": object(&[], json!({
            "provider": {"type": "string", "description": "provider code; staff only, organisations get their own"},
            "region": {"type": "string", "description": "GB/T 2260 code of the site the hosts are at (default: the provider's registered region)"},
            "ttl_hours": {"type": "integer", "minimum": 1, "maximum": 720},
            "uses": {"type": "integer", "minimum": 1, "maximum": 1000},
        })),
        "NewLine": object(&["name", "from_region", "to_region", "latency_ms", "bandwidth_mbps"], json!({
            "name": text,
            "from_region": text,
            "to_region": text,
            "latency_ms": {"type": "number", "exclusiveMinimum": 0},
            "bandwidth_mbps": {"type": "integer", "minimum": 1},
            "price_per_mbps_month": text,
            "provider": {"type": "string", "description": "admin only: the line provider's code"},
        })),
        "LineChange": object(&[], json!({
            "state": {"enum": crate::service::lines::LINE_STATES},
            "latency_ms": {"type": "number", "exclusiveMinimum": 0},
            "bandwidth_mbps": {"type": "integer", "minimum": 1},
            "price_per_mbps_month": text,
        })),
        "Demand": object(&[], json!({
            "resource_type": {"type": "string", "description": "C (general), A (AI accelerator), H (supercomputing); or general, ai, hpc"},
            "accelerator": object(&[], json!({
                "vendor": {"type": "string", "description": "any of the vendor's names: nvidia, huawei (ascend, 华为, 昇腾), hygon (海光), amd, cambricon (寒武纪), iluvatar (天数), …"},
                "kind": {"type": "string", "enum": ["gpu", "npu", "mlu", "dcu", "xpu", "gcu"], "description": "what the vendor calls the device"},
                "model": {"type": "string", "description": "whole words of the model name: H100 finds NVIDIA H100 80GB HBM3; a word ending in a letter also finds its numbered variants: 910B finds Ascend 910B3"},
                "count": {"type": "integer", "minimum": 1, "maximum": 64, "description": "per host"},
                "min_memory_gib": {"type": "number"},
                "min_free_memory_gib": {"type": "number"},
                "nvlink": {"type": "boolean"},
                "infiniband_gbps": {"type": "number", "description": "an ACTIVE InfiniBand port at least this fast"},
                "mig": {"type": "boolean"},
            })),
            "cpu_cores": {"type": "integer", "minimum": 1},
            "memory_gib": {"type": "number"},
            "disk_gib": {"type": "number"},
            "hosts": {"type": "integer", "minimum": 1, "maximum": crate::selection::demand::MAX_HOSTS, "description": "all or nothing"},
            "together": {"enum": ["anywhere", "region", "provider", "fabric"]},
            "region": {"type": "string", "description": "GB/T 2260 prefix: 2, 4 or 6 digits"},
            "user_region": {"type": "string", "description": "where the user is (GB/T 2260, 6 digits)"},
            "max_latency_ms": {"type": "number"},
            "min_bandwidth_mbps": {"type": "integer"},
            "providers": {"type": "array", "items": {"type": "string"}},
            "industries": {"type": "array", "items": {"type": "string"}},
            "architecture": {"type": "string", "description": "the hosts' instruction set: x86_64, aarch64 (arm64: Kunpeng, Phytium), loongarch64, riscv64"},
            "max_staleness_s": {"type": "number"},
            "max_price_per_hour_cny": {"type": ["string", "number"], "description": "the most the resources chosen on one host may cost per hour at the provider's listed prices; hosts without a listed price fail it"},
            "availability": {"enum": ["free_now", "installed"]},
            "expression": {"type": "string", "description": "CEL over `host` and `gpus`, e.g. host.cpus >= 64 && gpus.all(g, g.temperature_celsius < 80)"},
            "limit": {"type": "integer", "minimum": 1, "maximum": crate::selection::demand::MAX_LIMIT},
        })),
        "PriceList": object(&["prices"], json!({
            "prices": {"type": "array", "maxItems": crate::service::prices::MAX_PRICES, "items": object(&["resource", "per_hour_cny"], json!({
                "resource": {"enum": ["accelerator", "cpu"], "description": "accelerator: per accelerator-hour; cpu: per logical-core-hour"},
                "model": {"type": "string", "description": "accelerator only: words its name must contain (H100); absent for any model"},
                "per_hour_cny": {"type": ["string", "number"], "description": "yuan per hour, at most 4 decimals, e.g. \"18.50\""},
            }))},
        })),
        "Interval": object(&["interval_ms"], json!({"interval_ms": {"type": "integer", "minimum": 100, "maximum": 3600000}})),
        "Silence": object(&["matchers", "reason"], json!({
            "matchers": {"type": "array", "minItems": 1, "maxItems": 20, "items": object(&["name", "value"], json!({
                "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": "a label: alertname, severity, hostname, provider, region, identifier, gpu, uuid, xid, mount, port"},
                "value": {"type": "string", "maxLength": 1000},
                "op": {"enum": ["=", "!=", "=~", "!~"], "description": "=~ and !~ match the whole value as a regular expression"},
            }))},
            "starts_at_ms": {"type": "integer", "description": "unix milliseconds; now if absent"},
            "ends_at_ms": {"type": "integer", "description": "unix milliseconds; or give duration"},
            "duration": {"type": "string", "description": "e.g. 2h"},
            "reason": {"type": "string", "minLength": 1, "maxLength": 500},
        })),
        "NewReceiver": object(&["name", "kind", "url"], json!({
            "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
            "kind": {"enum": crate::alerting::RECEIVER_KINDS},
            "url": {"type": "string", "format": "uri", "maxLength": 2000, "description": "https; plain http only to loopback where the node allows it. email: smtp+starttls://[user@]host[:587]?to=a@x,b@y[&from=…] or smtps://…:465 (smtp:// only to a loopback relay); the password is the secret"},
            "secret": {"type": "string", "minLength": 1, "maxLength": 500, "description": "DingTalk or Feishu signing secret (required for them); the webhook's HMAC key; the SMTP password. Never shown again."},
            "mentions": {"type": "array", "maxItems": 20, "items": {"type": "string", "pattern": "^[0-9+]{5,20}$"}, "description": "mobile numbers to @ (DingTalk, WeCom)"},
            "min_severity": {"enum": ["info", "warning", "critical"]},
            "provider": {"type": "string", "description": "administrator only: the provider whose hosts it serves"},
        })),
        "Reason": object(&["reason"], json!({"reason": {"type": "string", "minLength": 1, "maxLength": 500}})),
    })
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
            if let Some(body) = route.body {
                assert!(
                    doc["components"]["schemas"][body].is_object(),
                    "schema {body}"
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
}
