//! The client side of org.sotto.Sotto1, for the `sotto` command: the same
//! names and signatures as the service.

use futures_util::StreamExt;
use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, MessageStream};

use crate::event::{DropReason, ErrorKind, Event, Spoken, Transcript};
use crate::{BusKind, NAME, PATH};

/// Signals the listener buffers while it prints (a burst of events at
/// the end of a fast file run fits).
const LISTEN_QUEUE: usize = 256;

/// Client errors, each one line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to the {0} bus ({1}); is a bus running? (use --system for the system bus)"
    )]
    Connect(&'static str, String),
    #[error(
        "no sottod is running on the {0} bus; start it (sottod, or systemctl --user start sotto)"
    )]
    NotRunning(&'static str),
    #[error("sottod refused: {0}")]
    Call(String),
    /// `Listen` heard nothing it could return (a timeout, a drop).
    #[error("{0}")]
    Unheard(String),
}

pub use crate::proxy::Sotto1Proxy;

/// Connects and makes sure a daemon owns the name: when none does, asks
/// the bus to start one (D-Bus activation, where the bus has sottod's
/// service file); only when that fails is no daemon an error.
pub async fn connect(bus: BusKind) -> Result<Connection, ClientError> {
    let name = bus.as_str();
    let conn = match bus {
        BusKind::Session => Connection::session().await,
        BusKind::System => Connection::system().await,
    }
    .map_err(|e| ClientError::Connect(name, e.to_string()))?;
    let dbus = zbus::fdo::DBusProxy::new(&conn)
        .await
        .map_err(|e| ClientError::Connect(name, e.to_string()))?;
    let owned = dbus
        .name_has_owner(NAME.try_into().expect("valid name"))
        .await
        .map_err(|e| ClientError::Connect(name, e.to_string()))?;
    if !owned
        && dbus
            .start_service_by_name(NAME.try_into().expect("valid name"), 0)
            .await
            .is_err()
    {
        return Err(ClientError::NotRunning(name));
    }
    Ok(conn)
}

/// Waits until a daemon owns the name again (a restart).
async fn owner_returns(owner: &mut MessageStream) -> Result<(), ClientError> {
    while let Some(msg) = owner.next().await {
        let msg = msg.map_err(call_err)?;
        let (_, _, new): (String, String, String) = msg.body().deserialize().map_err(call_err)?;
        if !new.is_empty() {
            return Ok(());
        }
    }
    Err(ClientError::Call("the bus connection closed".into()))
}

/// Writes a line to stdout; `false` when stdout is gone (a closed pipe,
/// as after `sotto listen | head -n1`), which ends the listener quietly.
fn print_line(line: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

fn call_err(e: zbus::Error) -> ClientError {
    match e {
        zbus::Error::MethodError(_, Some(msg), _) => ClientError::Call(msg),
        other => ClientError::Call(other.to_string()),
    }
}

/// `Pause` (true) or `Resume` (false).
pub async fn pause(bus: BusKind, pause: bool) -> Result<(), ClientError> {
    let conn = connect(bus).await?;
    let proxy = Sotto1Proxy::new(&conn).await.map_err(call_err)?;
    if pause {
        proxy.pause().await
    } else {
        proxy.resume().await
    }
    .map_err(call_err)
}

/// `StartUtterance` (true) or `EndUtterance` (false).
pub async fn utterance(bus: BusKind, start: bool) -> Result<(), ClientError> {
    let conn = connect(bus).await?;
    let proxy = Sotto1Proxy::new(&conn).await.map_err(call_err)?;
    if start {
        proxy.start_utterance().await
    } else {
        proxy.end_utterance().await
    }
    .map_err(call_err)
}

/// How long `hold` waits for the transcript after `EndUtterance`.
const HOLD_ANSWER_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Push-to-talk from a terminal: `StartUtterance`, wait for Enter (or
/// Ctrl-C, or the end of stdin), `EndUtterance`, then the text of the
/// utterance that started.
pub async fn hold(bus: BusKind) -> Result<String, ClientError> {
    let conn = connect(bus).await?;
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(NAME)
        .path(PATH)
        .interface(NAME)
        .build()
        .map_err(call_err)?;
    let mut stream =
        MessageStream::for_match_rule(rule, &conn, std::num::NonZeroUsize::new(LISTEN_QUEUE))
            .await
            .map_err(call_err)?;
    let proxy = Sotto1Proxy::new(&conn).await.map_err(call_err)?;
    proxy.start_utterance().await.map_err(call_err)?;
    eprintln!("sotto: speak now; press Enter to stop");
    let (enter_tx, enter_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = enter_tx.send(());
    });
    let mut id = None;
    tokio::pin!(enter_rx);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut enter_rx => break,
            _ = &mut ctrl_c => break,
            Some(Ok(msg)) = stream.next() => {
                if let Some((Event::SpeechStarted { id: started, .. }, _)) = event_of_signal(&msg) {
                    id.get_or_insert(started);
                }
            }
        }
    }
    proxy.end_utterance().await.map_err(call_err)?;
    let answer = async {
        while let Some(Ok(msg)) = stream.next().await {
            match event_of_signal(&msg) {
                Some((Event::SpeechStarted { id: started, .. }, _)) => {
                    id.get_or_insert(started);
                }
                Some((Event::Transcript(t), _)) if Some(t.id) == id => return Ok(t.text),
                Some((Event::Dropped { id: d, reason }, _)) if Some(d) == id => {
                    return Err(ClientError::Unheard(format!(
                        "dropped: {}: {}",
                        reason.as_str(),
                        reason.explain()
                    )))
                }
                _ => {}
            }
        }
        Err(ClientError::NotRunning(bus.as_str()))
    };
    tokio::time::timeout(HOLD_ANSWER_LIMIT, answer)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Unheard(
                "no transcript came within 30 s of the end".into(),
            ))
        })
}

/// `Listen(timeout_ms)`: the text of the next utterance that starts in time.
pub async fn once(bus: BusKind, timeout_ms: u32) -> Result<String, ClientError> {
    let conn = connect(bus).await?;
    let proxy = Sotto1Proxy::new(&conn).await.map_err(call_err)?;
    match proxy.listen(timeout_ms).await {
        Ok((_, text)) => Ok(text),
        Err(zbus::Error::MethodError(name, msg, _))
            if name.as_str() == "org.sotto.Sotto1.Error.Timeout" =>
        {
            Err(ClientError::Unheard(msg.unwrap_or_default()))
        }
        Err(zbus::Error::MethodError(name, msg, _))
            if name.as_str() == "org.sotto.Sotto1.Error.Dropped" =>
        {
            Err(ClientError::Unheard(format!(
                "dropped: {}",
                msg.unwrap_or_default()
            )))
        }
        Err(e) => Err(call_err(e)),
    }
}

/// State, device, model, language and every statistic, one per line.
pub async fn status(bus: BusKind) -> Result<String, ClientError> {
    let conn = connect(bus).await?;
    let proxy = Sotto1Proxy::new(&conn).await.map_err(call_err)?;
    let mut out = String::new();
    out.push_str(&format!(
        "state: {}\n",
        proxy.state().await.map_err(call_err)?
    ));
    out.push_str(&format!(
        "device: {}\n",
        proxy.device().await.map_err(call_err)?
    ));
    out.push_str(&format!(
        "model: {}\n",
        proxy.model().await.map_err(call_err)?
    ));
    out.push_str(&format!(
        "language: {}\n",
        proxy.language().await.map_err(call_err)?
    ));
    out.push_str(&format!(
        "mode: {}\n",
        proxy.mode().await.map_err(call_err)?
    ));
    let stats = proxy.get_stats().await.map_err(call_err)?;
    let mut keys: Vec<_> = stats.keys().cloned().collect();
    keys.sort();
    for k in keys {
        let v = &stats[&k];
        let text = u64::try_from(v)
            .map(|n| n.to_string())
            .or_else(|_| f64::try_from(v).map(|f| format!("{f:.3}")))
            .unwrap_or_else(|_| format!("{v:?}"));
        out.push_str(&format!("{k}: {text}\n"));
    }
    Ok(out)
}

/// Prints every transcript as a line (or every event as JSON) until the
/// daemon goes away; then returns an error saying so, or with `wait`
/// says so on stderr and carries on once a daemon owns the name again.
/// Returns quietly when stdout is closed.
pub async fn listen(bus: BusKind, as_json: bool, wait: bool) -> Result<(), ClientError> {
    let conn = connect(bus).await?;
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(NAME)
        .path(PATH)
        .interface(NAME)
        .build()
        .map_err(call_err)?;
    let queue = std::num::NonZeroUsize::new(LISTEN_QUEUE);
    let mut stream = MessageStream::for_match_rule(rule, &conn, queue)
        .await
        .map_err(call_err)?;
    let owner_rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender("org.freedesktop.DBus")
        .member("NameOwnerChanged")
        .add_arg(NAME)
        .build()
        .map_err(call_err)?;
    let mut owner = MessageStream::for_match_rule(owner_rule, &conn, queue)
        .await
        .map_err(call_err)?;
    // `Details` comes just before the `Transcript` it describes.
    let mut details: Option<(u64, Spoken)> = None;
    loop {
        tokio::select! {
            Some(Ok(msg)) = stream.next() => {
                if let Some(d) = details_of_signal(&msg) {
                    details = Some(d);
                    continue;
                }
                if let Some(line) = format_signal(&msg, as_json, details.take()) {
                    if !print_line(&line) {
                        return Ok(());
                    }
                }
            }
            Some(Ok(msg)) = owner.next() => {
                let (_, _, new): (String, String, String) = msg.body().deserialize().map_err(call_err)?;
                if new.is_empty() {
                    if !wait {
                        return Err(ClientError::NotRunning(bus.as_str()));
                    }
                    eprintln!("sotto: sottod left the {} bus; waiting for it to return", bus.as_str());
                    owner_returns(&mut owner).await?;
                    eprintln!("sotto: sottod is back");
                }
            }
            else => return Err(ClientError::NotRunning(bus.as_str())),
        }
    }
}

fn format_signal(
    msg: &zbus::Message,
    as_json: bool,
    details: Option<(u64, Spoken)>,
) -> Option<String> {
    let (mut event, latency_ms) = event_of_signal(msg)?;
    if let (Event::Transcript(t), Some((id, spoken))) = (&mut event, details) {
        if t.id == id {
            t.language = Some(spoken);
        }
    }
    if as_json {
        return event.to_json(Some(latency_ms)).map(|v| v.to_string());
    }
    match event {
        // The wake phrase said alone: nothing to print.
        Event::Transcript(t) if t.text.is_empty() => None,
        Event::Transcript(t) => Some(t.text),
        Event::Error { kind, message } => Some(format!("[{kind}] {message}")),
        Event::Dropped { id, reason } => Some(format!(
            "[dropped: {}] utterance {id}: {}",
            reason.as_str(),
            reason.explain()
        )),
        _ => None,
    }
}

/// A `Details` signal: the id and the language it names.
pub fn details_of_signal(msg: &zbus::Message) -> Option<(u64, Spoken)> {
    if msg.header().member()?.as_str() != "Details" {
        return None;
    }
    let (id, details): (u64, std::collections::HashMap<String, zbus::OwnedVariant>) =
        msg.body().deserialize().ok()?;
    let code = String::try_from(details.get("language")?.try_clone().ok()?).ok()?;
    let probability = f64::try_from(details.get("language_probability")?).ok()?;
    Some((id, Spoken { code, probability }))
}

/// A signal of the interface, decoded back into the event it was sent for
/// (with the latency a transcript carries). `None` for other messages.
pub fn event_of_signal(msg: &zbus::Message) -> Option<(Event, u64)> {
    let header = msg.header();
    let body = msg.body();
    let event = match header.member()?.as_str() {
        "SpeechStarted" => {
            let (id, start_ms): (u64, u64) = body.deserialize().ok()?;
            Event::SpeechStarted { id, start_ms }
        }
        "SpeechEnded" => {
            let (id, end_ms): (u64, u64) = body.deserialize().ok()?;
            Event::SpeechEnded { id, end_ms }
        }
        "Woken" => {
            let id: u64 = body.deserialize().ok()?;
            Event::Woken { id }
        }
        "Partial" => {
            let (id, text, stable): (u64, String, u32) = body.deserialize().ok()?;
            Event::Partial { id, text, stable }
        }
        "Transcript" => {
            let (id, text, start_ms, end_ms, confidence, latency_ms): (
                u64,
                String,
                u64,
                u64,
                f64,
                u32,
            ) = body.deserialize().ok()?;
            let t = Transcript {
                id,
                text,
                start_ms,
                end_ms,
                confidence,
                timing: None,
                language: None,
            };
            return Some((Event::Transcript(t), latency_ms.into()));
        }
        "Dropped" => {
            let (id, reason): (u64, String) = body.deserialize().ok()?;
            Event::Dropped {
                id,
                reason: DropReason::parse(&reason)?,
            }
        }
        "Error" => {
            let (kind, message): (String, String) = body.deserialize().ok()?;
            Event::Error {
                kind: ErrorKind::parse(&kind)?,
                message,
            }
        }
        _ => return None,
    };
    Some((event, 0))
}
