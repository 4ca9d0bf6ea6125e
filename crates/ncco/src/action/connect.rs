//! `connect`: call another endpoint (phone number, SIP URI, WebSocket, app user) and bridge
//! it to this call.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use super::{url_array, EventMethod};
use crate::error::{describe, NccoError, NccoErrorKind};
use crate::validate::{is_url_with_scheme, Field, Obj, Spec, Validator};

/// The `connect` action. Synchronous: the NCCO goes on when the connected leg ends or never
/// answers (with `eventType: "synchronous"` a failed attempt first asks the application for
/// a new NCCO).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connect {
    /// The one endpoint to call (sent as an array with one element).
    #[serde(serialize_with = "one_endpoint")]
    pub endpoint: Endpoint,
    /// Caller ID for the new leg (digits, optional leading `+`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Use a random number from the configured pool as caller ID (exclusive with `from`).
    pub random_from_number: bool,
    /// `synchronous`: a failed attempt's event may answer with an NCCO that replaces the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<ConnectEventType>,
    /// Seconds to ring before giving up, 1–7200; default 60.
    pub timeout: u32,
    /// Longest call in seconds once answered, 1–7200; default 7200.
    pub limit: u32,
    /// What to do when an answering machine answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_detection: Option<MachineDetection>,
    /// Advanced machine detection (wins over `machine_detection` when both are set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advanced_machine_detection: Option<AdvancedMachineDetection>,
    /// Where the new leg's events go; `None` = the call's event URL.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "url_array::option"
    )]
    pub event_url: Option<String>,
    /// HTTP method for `event_url`.
    pub event_method: EventMethod,
    /// Audio played to the caller while the endpoint rings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ringback_tone: Option<String>,
}

impl Connect {
    /// A connect to `endpoint` with the hosted API's defaults.
    pub fn to(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            from: None,
            random_from_number: false,
            event_type: None,
            timeout: 60,
            limit: MAX_LIMIT,
            machine_detection: None,
            advanced_machine_detection: None,
            event_url: None,
            event_method: EventMethod::Post,
            ringback_tone: None,
        }
    }

    /// True with `eventType: "synchronous"`.
    pub fn is_synchronous_event(&self) -> bool {
        self.event_type == Some(ConnectEventType::Synchronous)
    }
}

fn one_endpoint<S: Serializer>(e: &Endpoint, s: S) -> Result<S::Ok, S::Error> {
    [e].serialize(s)
}

/// Longest `limit` and `timeout` in seconds.
const MAX_LIMIT: u32 = 7200;

/// Where a `connect` goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Endpoint {
    /// A phone number, reached through the configured SIP trunk.
    Phone(PhoneEndpoint),
    /// A SIP URI.
    Sip(SipEndpoint),
    /// A WebSocket that receives and sends linear PCM.
    Websocket(WebsocketEndpoint),
    /// A registered app user.
    App(AppEndpoint),
}

impl Endpoint {
    /// The endpoint's `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Phone(_) => "phone",
            Self::Sip(_) => "sip",
            Self::Websocket(_) => "websocket",
            Self::App(_) => "app",
        }
    }
}

/// `{"type": "phone", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneEndpoint {
    /// Digits with an optional leading `+` (E.164 style), at most 15 digits.
    pub number: String,
    /// Digits sent once the call is answered: 0-9, `*`, `#`, and `p` for a 500 ms pause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtmf_answer: Option<String>,
    /// An NCCO run on the new leg before it is joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_answer: Option<OnAnswer>,
}

/// `onAnswer` of a phone endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnAnswer {
    /// URL serving the NCCO for the new leg.
    pub url: String,
    /// Ringback played to the caller meanwhile (`ringback` is accepted as an alias).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ringback_tone: Option<String>,
}

/// `{"type": "sip", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipEndpoint {
    /// `sip:` or `sips:` URI.
    pub uri: String,
    /// Extra headers for the INVITE (names are SIP tokens, values single-line).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// `{"type": "websocket", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebsocketEndpoint {
    /// `ws:` or `wss:` URI.
    pub uri: String,
    /// `audio/l16;rate=8000` or `audio/l16;rate=16000`.
    #[serde(rename = "content-type")]
    pub content_type: String,
    /// Metadata sent in the first WebSocket message.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub headers: serde_json::Map<String, serde_json::Value>,
}

/// `{"type": "app", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppEndpoint {
    /// The user name.
    pub user: String,
}

/// The only `eventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectEventType {
    /// A failed attempt's event may answer with a replacement NCCO.
    Synchronous,
}

/// Answering-machine behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineDetection {
    /// Report `machine` and carry on.
    Continue,
    /// End the new leg.
    Hangup,
}

/// `advancedMachineDetection` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AdvancedMachineDetection {
    /// What to do on a machine; default continue.
    pub behavior: MachineDetection,
    /// Detection mode; default detect.
    pub mode: AmdMode,
    /// Seconds to wait for the beep, 45–120; default 90.
    pub beep_timeout: u8,
}

/// Advanced machine detection mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AmdMode {
    /// Asynchronous detection including the beep.
    Default,
    /// Synchronous detection without the beep.
    Detect,
    /// Synchronous detection with the beep.
    DetectBeep,
}

const SPEC: Spec = Spec {
    fields: &[
        "action",
        "endpoint",
        "from",
        "randomFromNumber",
        "eventType",
        "timeout",
        "limit",
        "machineDetection",
        "advancedMachineDetection",
        "eventUrl",
        "eventMethod",
        "ringbackTone",
    ],
    unsupported: &[],
};

pub(super) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Connect, NccoError> {
    obj.check_keys(v, &SPEC)?;
    let endpoints = obj.require(v, "endpoint")?;
    let serde_json::Value::Array(items) = endpoints.value else {
        return Err(endpoints.err(NccoErrorKind::WrongType {
            expected: "an array with one endpoint object".to_owned(),
            got: describe(endpoints.value),
        }));
    };
    let [only] = items.as_slice() else {
        return Err(endpoints.invalid("an array with exactly one endpoint object"));
    };
    let mut c = Connect::to(parse_endpoint(v, &endpoints.element(0, only))?);

    let mut from_path = None;
    if let Some(f) = obj.get(v, "from") {
        c.from = Some(phone_number(&f)?);
        from_path = Some(f.path);
    }
    if let Some(f) = obj.get(v, "randomFromNumber") {
        c.random_from_number = f.boolean()?;
        if let (true, Some(other)) = (c.random_from_number, from_path) {
            return Err(f.err(NccoErrorKind::Conflict {
                rule: format!("randomFromNumber cannot be true when {other} is given"),
            }));
        }
    }
    if let Some(f) = obj.get(v, "eventType") {
        f.one_of(v, &["synchronous"])?;
        c.event_type = Some(ConnectEventType::Synchronous);
    }
    if let Some(f) = obj.get(v, "timeout") {
        c.timeout = seconds(f.integer(1, i64::from(MAX_LIMIT))?);
    }
    if let Some(f) = obj.get(v, "limit") {
        c.limit = seconds(f.integer(1, i64::from(MAX_LIMIT))?);
    }
    if let Some(f) = obj.get(v, "machineDetection") {
        c.machine_detection = Some(machine_detection(v, &f)?);
    }
    if let Some(f) = obj.get(v, "advancedMachineDetection") {
        c.advanced_machine_detection = Some(parse_amd(v, &f)?);
    }
    if let Some(f) = obj.get(v, "eventUrl") {
        c.event_url = Some(f.url_array()?);
    }
    if let Some(f) = obj.get(v, "eventMethod") {
        c.event_method = EventMethod::parse(v, &f)?;
    }
    if let Some(f) = obj.get(v, "ringbackTone") {
        c.ringback_tone = Some(f.http_url()?);
    }
    Ok(c)
}

fn seconds(i: i64) -> u32 {
    u32::try_from(i).unwrap_or(MAX_LIMIT)
}

fn machine_detection(v: &mut Validator<'_>, f: &Field<'_>) -> Result<MachineDetection, NccoError> {
    Ok(match f.one_of(v, &["continue", "hangup"])? {
        "hangup" => MachineDetection::Hangup,
        _ => MachineDetection::Continue,
    })
}

const AMD_SPEC: Spec = Spec {
    fields: &["behavior", "mode", "beep_timeout"],
    unsupported: &[],
};

fn parse_amd(v: &mut Validator<'_>, f: &Field<'_>) -> Result<AdvancedMachineDetection, NccoError> {
    let obj = f.object("\"advancedMachineDetection\" of \"connect\"".to_owned())?;
    obj.check_keys(v, &AMD_SPEC)?;
    let mut amd = AdvancedMachineDetection {
        behavior: MachineDetection::Continue,
        mode: AmdMode::Detect,
        beep_timeout: 90,
    };
    if let Some(g) = obj.get(v, "behavior") {
        amd.behavior = machine_detection(v, &g)?;
    }
    if let Some(g) = obj.get(v, "mode") {
        amd.mode = match g.one_of(v, &["default", "detect", "detect_beep"])? {
            "default" => AmdMode::Default,
            "detect_beep" => AmdMode::DetectBeep,
            _ => AmdMode::Detect,
        };
    }
    if let Some(g) = obj.get(v, "beep_timeout") {
        amd.beep_timeout = u8::try_from(g.integer(45, 120)?).unwrap_or(90);
    }
    Ok(amd)
}

const PHONE_SPEC: Spec = Spec {
    fields: &["type", "number", "dtmfAnswer", "onAnswer"],
    unsupported: &[("shaken", "STIR/SHAKEN identity headers are not passed on")],
};
const SIP_SPEC: Spec = Spec {
    fields: &["type", "uri", "headers"],
    unsupported: &[("standardHeaders", "User-to-User header passing")],
};
const WEBSOCKET_SPEC: Spec = Spec {
    fields: &["type", "uri", "content-type", "headers"],
    unsupported: &[("authorization", "WebSocket authorization headers")],
};
const APP_SPEC: Spec = Spec {
    fields: &["type", "user"],
    unsupported: &[],
};
const VBC_SPEC: Spec = Spec {
    fields: &["type", "extension"],
    unsupported: &[],
};
const ON_ANSWER_SPEC: Spec = Spec {
    fields: &["url", "ringbackTone", "ringback"],
    unsupported: &[],
};

/// Most extra SIP headers on one endpoint.
const MAX_SIP_HEADERS: usize = 32;

fn parse_endpoint(v: &mut Validator<'_>, f: &Field<'_>) -> Result<Endpoint, NccoError> {
    let obj = f.object("a connect endpoint".to_owned())?;
    let kind_field = obj.require(v, "type")?;
    let kind = kind_field.one_of(v, &["phone", "sip", "websocket", "app", "vbc"])?;
    let obj = Obj {
        object: format!("endpoint type \"{kind}\""),
        ..obj
    };
    match kind {
        "phone" => {
            obj.check_keys(v, &PHONE_SPEC)?;
            let number = phone_number(&obj.require(v, "number")?)?;
            let mut phone = PhoneEndpoint {
                number,
                dtmf_answer: None,
                on_answer: None,
            };
            if let Some(g) = obj.get(v, "dtmfAnswer") {
                let digits = g.string()?;
                if digits.is_empty()
                    || digits.len() > 64
                    || !digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || "*#p".contains(c))
                {
                    return Err(g.invalid("1-64 characters of 0-9, *, # and p (pause)"));
                }
                phone.dtmf_answer = Some(digits.to_owned());
            }
            if let Some(g) = obj.get(v, "onAnswer") {
                let on = g.object("\"onAnswer\" of a phone endpoint".to_owned())?;
                on.check_keys(v, &ON_ANSWER_SPEC)?;
                let url = on.require(v, "url")?.http_url()?;
                let mut ringback_tone = None;
                for key in ["ringbackTone", "ringback"] {
                    if let Some(h) = on.get(v, key) {
                        ringback_tone = Some(h.http_url()?);
                    }
                }
                phone.on_answer = Some(OnAnswer { url, ringback_tone });
            }
            Ok(Endpoint::Phone(phone))
        }
        "sip" => {
            obj.check_keys(v, &SIP_SPEC)?;
            let uri_field = obj.require(v, "uri")?;
            let uri = uri_field.string()?;
            if !is_url_with_scheme(uri, &["sip:", "sips:"]) {
                return Err(uri_field.invalid("a sip: or sips: URI"));
            }
            let mut headers = BTreeMap::new();
            if let Some(g) = obj.get(v, "headers") {
                let h = g.object("\"headers\" of a sip endpoint".to_owned())?;
                if h.map.len() > MAX_SIP_HEADERS {
                    return Err(g.invalid(format!("at most {MAX_SIP_HEADERS} headers")));
                }
                for (name, value) in h.map {
                    let path = crate::validate::child_path(&g.path, name);
                    if name.is_empty() || !name.chars().all(is_sip_token_char) {
                        return Err(NccoError::new(
                            path,
                            NccoErrorKind::InvalidValue {
                                expected: "a SIP header name (letters, digits and -.!%*_+`'~)"
                                    .to_owned(),
                                got: crate::error::quote_truncated(name),
                            },
                        ));
                    }
                    let Some(text) = value.as_str().filter(|t| !t.chars().any(char::is_control))
                    else {
                        return Err(NccoError::new(
                            path,
                            NccoErrorKind::InvalidValue {
                                expected: "a single-line string".to_owned(),
                                got: describe(value),
                            },
                        ));
                    };
                    headers.insert(name.clone(), text.to_owned());
                }
            }
            Ok(Endpoint::Sip(SipEndpoint {
                uri: uri.to_owned(),
                headers,
            }))
        }
        "websocket" => {
            obj.check_keys(v, &WEBSOCKET_SPEC)?;
            let uri_field = obj.require(v, "uri")?;
            let uri = uri_field.string()?;
            if !is_url_with_scheme(uri, &["ws://", "wss://"]) {
                return Err(uri_field.invalid("a ws:// or wss:// URI"));
            }
            let content_type = obj
                .require(v, "content-type")?
                .one_of(v, &["audio/l16;rate=8000", "audio/l16;rate=16000"])?;
            let mut headers = serde_json::Map::new();
            if let Some(g) = obj.get(v, "headers") {
                headers = g
                    .object("\"headers\" of a websocket endpoint".to_owned())?
                    .map
                    .clone();
            }
            Ok(Endpoint::Websocket(WebsocketEndpoint {
                uri: uri.to_owned(),
                content_type: content_type.to_owned(),
                headers,
            }))
        }
        "app" => {
            obj.check_keys(v, &APP_SPEC)?;
            let user = obj.require(v, "user")?.non_empty_string()?;
            Ok(Endpoint::App(AppEndpoint {
                user: user.to_owned(),
            }))
        }
        _ => {
            // "vbc": checked for shape, then reported as not implemented. The placeholder is
            // never returned: a deferred error always fails the whole NCCO.
            obj.check_keys(v, &VBC_SPEC)?;
            obj.require(v, "extension")?.non_empty_string()?;
            v.defer(kind_field.err(NccoErrorKind::NotImplemented {
                what: "endpoint type \"vbc\" (Vonage Business Cloud extensions)".to_owned(),
            }));
            Ok(Endpoint::App(AppEndpoint {
                user: String::new(),
            }))
        }
    }
}

/// Digits with an optional leading `+`, 1–15 digits (E.164's maximum).
fn phone_number(f: &Field<'_>) -> Result<String, NccoError> {
    let s = f.string()?;
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(f.invalid("a phone number: 1-15 digits with an optional leading +"));
    }
    Ok(s.to_owned())
}

/// RFC 3261 `token` characters.
fn is_sip_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}
