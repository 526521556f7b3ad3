//! The UI's write commands (`emit`, `join`, `leave`, `_disconnect`), checked before they act.

use serde_json::Value;

use crate::io::SocketIo;
use crate::operators::BroadcastOperator;
use crate::packet::Args;

/// One of the UI's write commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// `emit(nsp, filter?, event, ...args)`
    Emit,
    /// `join(nsp, room, filter?)`
    Join,
    /// `leave(nsp, room, filter?)`
    Leave,
    /// `_disconnect(nsp, close, filter?)`
    Disconnect,
}

impl Command {
    pub(crate) const ALL: [Command; 4] = [
        Command::Emit,
        Command::Join,
        Command::Leave,
        Command::Disconnect,
    ];

    /// The event name the UI sends.
    pub(crate) fn event(self) -> &'static str {
        match self {
            Command::Emit => "emit",
            Command::Join => "join",
            Command::Leave => "leave",
            Command::Disconnect => "_disconnect",
        }
    }
}

/// Checks and runs `command` cluster-wide; the error says what was wrong with it.
pub(crate) async fn run(
    io: &SocketIo,
    command: Command,
    args: &Args,
    max_emit_bytes: usize,
) -> Result<(), String> {
    if args.has_binary() {
        return Err("binary arguments are not accepted in admin commands".into());
    }
    let size = args.raw_json().map_or(0, <[u8]>::len);
    if command == Command::Emit && size > max_emit_bytes {
        return Err(format!(
            "emit of {size} bytes is over the admin limit of {max_emit_bytes} bytes"
        ));
    }
    let values: Vec<Value> = args
        .deserialize()
        .map_err(|e| format!("arguments are not a JSON list: {e}"))?;
    let nsp = match values.first() {
        Some(Value::String(nsp)) if !nsp.is_empty() => nsp.as_str(),
        _ => return Err("missing namespace (first argument)".into()),
    };
    let operator = io
        .of(nsp)
        .map_err(|_| format!("unknown namespace {nsp:?}"))?;
    match command {
        Command::Emit => {
            let operator = with_filter(operator, values.get(1))?;
            let Some(Value::String(event)) = values.get(2) else {
                return Err("missing event name (third argument)".into());
            };
            let rest = Args::from_values(values.get(3..).unwrap_or_default())
                .map_err(|e| format!("arguments cannot be encoded: {e}"))?;
            operator
                .emit_args(event, rest)
                .await
                .map_err(|e| e.to_string())
        }
        Command::Join | Command::Leave => {
            let room = match values.get(1) {
                Some(Value::String(room)) if !room.is_empty() => room.clone(),
                _ => return Err("missing room (second argument)".into()),
            };
            let operator = with_filter(operator, values.get(2))?;
            let done = if command == Command::Join {
                operator.join(room).await
            } else {
                operator.leave(room).await
            };
            done.map_err(|e| e.to_string())
        }
        Command::Disconnect => {
            let close = match values.get(1) {
                None | Some(Value::Null) => false,
                Some(Value::Bool(close)) => *close,
                Some(_) => return Err("`close` (second argument) must be a boolean".into()),
            };
            let operator = with_filter(operator, values.get(2))?;
            operator
                .disconnect_closing(close)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// Narrows `operator` to the room (or socket id) `filter`; none, `null` or `""` is the whole
/// namespace, as in the official server.
fn with_filter(
    operator: BroadcastOperator,
    filter: Option<&Value>,
) -> Result<BroadcastOperator, String> {
    match filter {
        None | Some(Value::Null) => Ok(operator),
        Some(Value::String(room)) if room.is_empty() => Ok(operator),
        Some(Value::String(room)) => Ok(operator.to(room.clone())),
        Some(other) => Err(format!(
            "unknown filter {other}: a room or socket id (string) is expected"
        )),
    }
}
