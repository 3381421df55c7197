//! Ready-made hook specs.

use tenon_hooks::HookSpec;

/// The nine extension points of an agent runner (work items, prompts, model
/// calls, tool calls, responses), with the mutable fields and blocking rules
/// of the plugin-system completion design (section 2.2). The `tenon` CLI's
/// generic host and the demo host use them.
pub fn agent_runner_hooks() -> Vec<HookSpec> {
    vec![
        HookSpec::new("work_item.pre_create")
            .with_mutable([
                "/workItem/title",
                "/workItem/payload",
                "/workItem/session_key",
            ])
            .with_blocking(true),
        HookSpec::new("work_item.post_create"),
        HookSpec::new("run.pre_prompt").with_mutable(["/systemPrompt", "/userMessage"]),
        HookSpec::new("model.pre_call")
            .with_mutable(["/temperature", "/maxTokens", "/model"])
            .with_blocking(true),
        HookSpec::new("model.post_call"),
        HookSpec::new("tool.pre_exec")
            .with_mutable(["/toolInput"])
            .with_blocking(true),
        HookSpec::new("tool.post_exec").with_mutable(["/result/output"]),
        HookSpec::new("response.pre_deliver")
            .with_mutable(["/content"])
            .with_blocking(true),
        HookSpec::new("response.post_deliver"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nine_hooks_are_valid_and_distinct() {
        let specs = agent_runner_hooks();
        assert_eq!(specs.len(), 9);
        let registry = tenon_hooks::HookRegistry::new();
        registry.declare_all(specs).expect("valid specs");
        let blockable: Vec<String> = registry
            .specs()
            .into_iter()
            .filter(|s| s.can_block)
            .map(|s| s.name)
            .collect();
        assert_eq!(
            blockable,
            [
                "model.pre_call",
                "response.pre_deliver",
                "tool.pre_exec",
                "work_item.pre_create"
            ]
        );
    }
}
