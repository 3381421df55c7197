//! The event log over HTTP: pages, and a live stream of server-sent
//! events that follows the registry (so it sees what every process on it
//! records) from a cursor.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::{Extension, Json};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tenon_engine::{
    Event, EventCursor, EventKind, EventOrder, EventQuery, PluginEngine, PluginId, Role,
};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::admin::{plugin_param, query, timestamp};
use crate::error::{ApiResult, HttpError};
use crate::{Secret, Shared};

/// The most events one page (or one read of the stream) holds.
const MAX_PAGE: usize = 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    plugin: Option<String>,
    kind: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

impl EventsQuery {
    fn to_query(&self) -> ApiResult<EventQuery> {
        let mut q = EventQuery::default();
        if let Some(plugin) = &self.plugin {
            q = q.with_plugin(plugin_param(plugin)?);
        }
        if let Some(kinds) = &self.kind {
            let kinds = kinds
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| {
                    EventKind::parse(k).map_err(|e| HttpError::BadRequest(format!("kind: {e}")))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            q = q.with_kinds(&kinds);
        }
        q = q.with_after(cursor(self.after.as_deref())?);
        Ok(q.with_limit(self.limit.unwrap_or(100).clamp(1, MAX_PAGE)))
    }
}

fn cursor(text: Option<&str>) -> ApiResult<Option<EventCursor>> {
    text.map(|t| {
        t.parse::<EventCursor>().map_err(|e| {
            HttpError::BadRequest(format!(
                "`{}` is not an event cursor: {e}",
                t.escape_default()
            ))
        })
    })
    .transpose()
}

pub(crate) fn event_json(event: &Event) -> Value {
    json!({
        "cursor": event.cursor.to_string(),
        "at": timestamp(event.at),
        "tenant": event.tenant.as_str(),
        "plugin": event.plugin.as_ref().map(PluginId::as_str),
        "version": event.version.as_ref().map(ToString::to_string),
        "kind": event.kind.as_str(),
        "status": event.status.to_string(),
        "detail": event.detail,
    })
}

/// `GET /api/v1/events`: a page, newest first.
pub(crate) async fn list(
    axum::extract::State(state): Shared,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q)?.to_query()?;
    let page = state.engine.events(&q).await?;
    let events: Vec<Value> = page.events.iter().map(event_json).collect();
    Ok(Json(json!({
        "events": events,
        "next": page.next.map(|c| c.to_string()),
    })))
}

struct Follow {
    engine: PluginEngine,
    query: EventQuery,
    cursor: Option<EventCursor>,
    poll: Duration,
    buffered: std::collections::VecDeque<Event>,
    /// The caller's token, checked again every `recheck`.
    secret: String,
    recheck: Duration,
    next_check: Instant,
    /// When the stream ends whatever happens.
    ends: Instant,
    /// The stream's place among those open at once.
    _permit: OwnedSemaphorePermit,
}

impl Follow {
    /// Whether the stream may go on: its lifetime is not over and its
    /// token still exists with a role that may read events.
    async fn may_go_on(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.ends {
            return false;
        }
        if now < self.next_check {
            return true;
        }
        self.next_check = now + self.recheck;
        match self.engine.authenticate(&self.secret).await {
            Ok(Some(token)) => token.role.allows(Role::Viewer),
            Ok(None) => false,
            Err(error) => {
                tracing::warn!("the event stream cannot check its token: {error}");
                false
            }
        }
    }

    /// How long to wait before looking again: the poll interval, cut short
    /// by the next token check or the end of the stream.
    fn pause(&self) -> Duration {
        let now = Instant::now();
        self.poll
            .min(self.next_check.saturating_duration_since(now))
            .min(self.ends.saturating_duration_since(now))
    }
}

fn follow(state: Follow) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if !state.may_go_on().await {
                return None;
            }
            if let Some(event) = state.buffered.pop_front() {
                state.cursor = Some(event.cursor);
                let sse = SseEvent::default()
                    .id(event.cursor.to_string())
                    .event(event.kind.as_str())
                    .data(event_json(&event).to_string());
                return Some((Ok(sse), state));
            }
            let query = state
                .query
                .clone()
                .with_order(EventOrder::OldestFirst)
                .with_after(state.cursor)
                .with_limit(MAX_PAGE);
            match state.engine.events(&query).await {
                Ok(page) if !page.events.is_empty() => state.buffered.extend(page.events),
                Ok(_) => tokio::time::sleep(state.pause()).await,
                Err(error) => {
                    tracing::warn!("the event stream cannot read the log: {error}");
                    let sse = SseEvent::default()
                        .event("error")
                        .data(json!({"message": crate::error::SERVER_ERROR_MESSAGE}).to_string());
                    tokio::time::sleep(state.pause()).await;
                    return Some((Ok(sse), state));
                }
            }
        }
    })
}

/// `GET /api/v1/events/stream`: every event recorded from now (or after
/// `after` / `Last-Event-ID`), as it is recorded, until the stream's
/// lifetime is over or its token is revoked. At most
/// `max_event_streams` are open at once.
pub(crate) async fn stream(
    axum::extract::State(state): Shared,
    secret: Option<Extension<Secret>>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let q = query(q)?;
    let secret = secret.ok_or(HttpError::Unauthenticated)?.0.0;
    let permit = state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| HttpError::TooManyStreams(state.config.max_event_streams))?;
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let start = match cursor(last_id.as_deref().or(q.after.as_deref()))? {
        Some(cursor) => Some(cursor),
        None => state.engine.latest_event_cursor().await?,
    };
    let follow_state = Follow {
        engine: state.engine.clone(),
        query: q.to_query()?,
        cursor: start,
        poll: state.config.event_poll,
        buffered: std::collections::VecDeque::new(),
        secret,
        recheck: state.config.event_recheck,
        next_check: Instant::now() + state.config.event_recheck,
        ends: Instant::now() + state.config.event_stream_lifetime,
        _permit: permit,
    };
    Ok(Sse::new(follow(follow_state)).keep_alive(KeepAlive::default()))
}
