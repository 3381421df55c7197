//! The event log over HTTP: pages, and a live stream of server-sent
//! events that follows the registry (so it sees what every process on it
//! records) from a cursor.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tenon_engine::{Event, EventCursor, EventKind, EventOrder, EventQuery, PluginEngine, PluginId};

use crate::Shared;
use crate::admin::{plugin_param, query, timestamp};
use crate::error::{ApiResult, HttpError};

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
}

fn follow(state: Follow) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures::stream::unfold(state, |mut state| async move {
        loop {
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
                Ok(_) => tokio::time::sleep(state.poll).await,
                Err(error) => {
                    tracing::warn!("the event stream cannot read the log: {error}");
                    let sse = SseEvent::default()
                        .event("error")
                        .data(json!({"message": error.to_string()}).to_string());
                    tokio::time::sleep(state.poll).await;
                    return Some((Ok(sse), state));
                }
            }
        }
    })
}

/// `GET /api/v1/events/stream`: every event recorded from now (or after
/// `after` / `Last-Event-ID`), as it is recorded.
pub(crate) async fn stream(
    axum::extract::State(state): Shared,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let q = query(q)?;
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
    };
    Ok(Sse::new(follow(follow_state)).keep_alive(KeepAlive::default()))
}
