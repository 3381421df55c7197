//! Hook receipts into the registry's event log, batched and off the hot path.

use tenon_hooks::{HookContext, HookReceipt, ReceiptObserver, ReceiptStatus};
use tenon_manifest::PluginId;
use tenon_registry::{EventKind, EventStatus, EventWriter, NewEvent, TenantId};

/// Records one `hook` event per receipt through the [`EventWriter`] (which
/// never blocks the dispatch: a full queue drops and counts).
pub(crate) struct ReceiptLog {
    pub(crate) tenant: TenantId,
    pub(crate) writer: EventWriter,
}

pub(crate) fn status(status: ReceiptStatus) -> EventStatus {
    match status {
        ReceiptStatus::Ok => EventStatus::Ok,
        ReceiptStatus::Blocked => EventStatus::Blocked,
        ReceiptStatus::Error => EventStatus::Error,
        ReceiptStatus::Timeout => EventStatus::Timeout,
        ReceiptStatus::Skipped => EventStatus::Skipped,
        ReceiptStatus::Rejected => EventStatus::Rejected,
    }
}

impl ReceiptObserver for ReceiptLog {
    fn on_receipts(&self, _context: &HookContext, receipts: &[HookReceipt]) {
        for receipt in receipts {
            let detail = serde_json::to_value(receipt).unwrap_or_default();
            let mut event =
                NewEvent::new(self.tenant.clone(), EventKind::Hook, status(receipt.status))
                    .with_detail(detail);
            if let Ok(plugin) = PluginId::new(&receipt.plugin) {
                event = event.with_plugin(plugin);
            }
            self.writer.record(event);
        }
    }
}

/// Receipts back from stored `hook` events (for statistics of a registry
/// without a running engine, as `tenon stats` computes them).
pub fn receipts_from_events(events: &[tenon_registry::Event]) -> Vec<HookReceipt> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Hook)
        .filter_map(|e| serde_json::from_value(e.detail.clone()).ok())
        .collect()
}
