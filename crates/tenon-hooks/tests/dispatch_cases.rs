//! Runs the dispatch cases of `fixtures/dispatch_cases.json` under Tokio's
//! paused time, so every duration is exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde::Deserialize;
use serde_json::{Value, json};
use tenon_hooks::{
    Backoff, DispatchConfig, FailPolicy, HandlerError, HandlerFuture, HandlerId, HandlerOptions,
    HookAction, HookCall, HookContext, HookDispatcher, HookHandler, HookRegistry, HookSpec,
    Priority, ReceiptStatus, SkipReason,
};
use tokio::time::Instant;

#[derive(Deserialize)]
struct Fixture {
    default_spec: HookSpec,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    spec: Option<HookSpec>,
    budget_ms: Option<u64>,
    handlers: Vec<HandlerCase>,
    data: Value,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandlerCase {
    plugin: String,
    #[serde(default)]
    priority: Priority,
    #[serde(default)]
    fail_policy: FailPolicy,
    timeout_ms: Option<u64>,
    #[serde(default)]
    retries: u32,
    backoff: Option<Backoff>,
    steps: Vec<Step>,
}

/// What a scripted handler does on one attempt.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Step {
    Continue,
    Panic,
    Push(String),
    Patch(Value),
    Block(Option<String>),
    Fail(String),
    Sleep { ms: u64, then: Box<Step> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    data: Value,
    blocked: Option<ExpectBlocked>,
    stopped: Option<ExpectStopped>,
    receipts: Vec<ExpectReceipt>,
    calls: Option<Vec<(usize, u32, u64)>>,
    elapsed_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectBlocked {
    h: usize,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectStopped {
    h: usize,
    status: ReceiptStatus,
    error: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectReceipt {
    h: usize,
    status: ReceiptStatus,
    attempts: Option<u32>,
    #[serde(default)]
    ms: u64,
    #[serde(default)]
    changed: Vec<String>,
    error: Option<String>,
    skip: Option<SkipReason>,
}

/// Every call a scripted handler received: (registration index, attempt, ms
/// since the dispatch started).
type CallLog = Arc<Mutex<Vec<(usize, u32, u64)>>>;

struct Scripted {
    index: usize,
    steps: Vec<Step>,
    log: CallLog,
    start: Instant,
}

impl HookHandler for Scripted {
    fn call<'a>(&'a self, call: HookCall<'a>) -> HandlerFuture<'a> {
        let at = u64::try_from(self.start.elapsed().as_millis()).expect("short test");
        self.log
            .lock()
            .expect("log")
            .push((self.index, call.attempt, at));
        let step = &self.steps[(call.attempt as usize - 1).min(self.steps.len() - 1)];
        perform(step, call.data)
    }
}

fn perform<'a>(step: &'a Step, data: &'a Value) -> HandlerFuture<'a> {
    match step {
        Step::Continue => HandlerFuture::ready(Ok(HookAction::CONTINUE)),
        Step::Panic => panic!("scripted panic"),
        Step::Push(label) => {
            let mut trace = data["trace"].as_array().cloned().unwrap_or_default();
            trace.push(json!(label));
            HandlerFuture::ready(Ok(HookAction::patch(json!({ "trace": trace }))))
        }
        Step::Patch(patch) => HandlerFuture::ready(Ok(HookAction::patch(patch.clone()))),
        Step::Block(reason) => HandlerFuture::ready(Ok(HookAction::Block {
            reason: reason.clone(),
        })),
        Step::Fail(message) => HandlerFuture::ready(Err(HandlerError::new(message.clone()))),
        Step::Sleep { ms, then } => HandlerFuture::new(async move {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            perform(then, data).await
        }),
    }
}

#[tokio::test(start_paused = true)]
async fn dispatch_cases() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("fixtures/dispatch_cases.json")).expect("fixture parses");
    assert!(fixture.cases.len() >= 20, "the fixture lost cases");
    for case in fixture.cases {
        run_case(&fixture.default_spec, case).await;
    }
}

async fn run_case(default_spec: &HookSpec, case: Case) {
    let name = case.name.as_str();
    let spec = case.spec.clone().unwrap_or_else(|| default_spec.clone());
    let hook = spec.name.clone();
    let registry = HookRegistry::new();
    registry.declare(spec).expect(name);
    let mut config = DispatchConfig::default();
    if let Some(ms) = case.budget_ms {
        config = config.with_budget(Duration::from_millis(ms));
    }
    let dispatcher = HookDispatcher::with_config(registry.clone(), config);

    let log = CallLog::default();
    let start = Instant::now();
    let mut ids: Vec<HandlerId> = Vec::new();
    for (index, h) in case.handlers.into_iter().enumerate() {
        let mut options = HandlerOptions::new()
            .with_priority(h.priority)
            .with_fail_policy(h.fail_policy)
            .with_retries(h.retries, h.backoff);
        if let Some(ms) = h.timeout_ms {
            options = options.with_timeout(Duration::from_millis(ms));
        }
        let handler = Arc::new(Scripted {
            index,
            steps: h.steps,
            log: Arc::clone(&log),
            start,
        });
        ids.push(
            registry
                .register(&h.plugin, &hook, handler, options)
                .expect(name),
        );
    }
    let index_of = |id: HandlerId| ids.iter().position(|i| *i == id).expect("known id");

    let context = HookContext::new("tenant");
    let outcome = dispatcher
        .dispatch(&hook, &context, case.data)
        .await
        .expect(name);
    let expect = case.expect;

    assert_eq!(outcome.data, expect.data, "{name}: data");
    assert_eq!(
        outcome
            .blocked
            .as_ref()
            .map(|b| (index_of(b.handler), b.reason.clone())),
        expect.blocked.map(|b| (b.h, b.reason)),
        "{name}: blocked"
    );
    match (&outcome.stopped, expect.stopped) {
        (None, None) => {}
        (Some(stopped), Some(want)) => {
            assert_eq!(
                (index_of(stopped.handler), stopped.status),
                (want.h, want.status),
                "{name}: stopped"
            );
            assert!(
                stopped.error.contains(&want.error),
                "{name}: stopped error {:?}",
                stopped.error
            );
        }
        (got, want) => panic!(
            "{name}: stopped is {got:?}, expected {:?}",
            want.map(|w| w.h)
        ),
    }
    assert!(
        outcome.blocked.is_none() || outcome.stopped.is_none(),
        "{name}: blocked and stopped"
    );

    let got: Vec<_> = outcome
        .receipts
        .iter()
        .map(|r| {
            (
                index_of(r.handler),
                r.status,
                r.attempts,
                u64::try_from(r.duration.as_millis()).expect("short"),
                r.changed_fields.clone(),
                r.skip_reason,
            )
        })
        .collect();
    let want: Vec<_> = expect
        .receipts
        .iter()
        .map(|r| {
            let skipped = r.status == ReceiptStatus::Skipped;
            let attempts = r.attempts.unwrap_or(if skipped { 0 } else { 1 });
            (r.h, r.status, attempts, r.ms, r.changed.clone(), r.skip)
        })
        .collect();
    assert_eq!(
        got, want,
        "{name}: receipts (handler, status, attempts, ms, changed, skip)"
    );
    for (receipt, want) in outcome.receipts.iter().zip(&expect.receipts) {
        match (&receipt.error, &want.error) {
            (None, None) => {}
            (Some(why), None) if receipt.status == ReceiptStatus::Skipped => {
                assert!(
                    why.starts_with("not run: "),
                    "{name}: skipped without a reason: {why:?}"
                );
            }
            (Some(error), Some(part)) => assert!(
                error.contains(part.as_str()),
                "{name}: error {error:?} lacks {part:?}"
            ),
            (got, want) => {
                panic!("{name}: receipt error {got:?}, expected one containing {want:?}")
            }
        }
        assert_eq!(&*receipt.hook, hook.as_str(), "{name}");
        assert_eq!(receipt.execution_id, context.execution_id(), "{name}");
        assert_eq!(
            &*receipt.plugin,
            registry_plugin(&registry, receipt.handler, &hook),
            "{name}"
        );
    }
    if let Some(calls) = expect.calls {
        assert_eq!(
            *log.lock().expect("log"),
            calls,
            "{name}: calls (handler, attempt, ms)"
        );
    }
    if let Some(ms) = expect.elapsed_ms {
        assert_eq!(
            outcome.elapsed,
            Duration::from_millis(ms),
            "{name}: elapsed"
        );
    }
}

fn registry_plugin(registry: &HookRegistry, id: HandlerId, hook: &str) -> String {
    registry
        .handlers(hook)
        .expect("declared")
        .into_iter()
        .find(|h| h.id == id)
        .map(|h| h.plugin)
        .expect("registered")
}
