//! The typed layer: dispatch a Rust value and get a Rust value back.
//!
//! The value goes to handlers as JSON. Every patch is checked twice: against
//! the spec's mutable pointers, and by converting the patched JSON back to the
//! type. A patch that would leave data the type cannot hold (a string where a
//! number belongs) is `rejected` like any other bad patch, so the final
//! conversion cannot fail on account of a plugin.

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::registry::HookSlot;
use crate::{DispatchOutcome, Hook, HookContext, HookDispatcher, HookError, HookSpec};

impl HookDispatcher {
    /// Runs `hook` over a typed value and returns the (possibly changed) value
    /// (see the [`typed`](crate#typed-data) layer). Fails if the hook is not
    /// declared or the value does not convert to and from JSON.
    pub async fn dispatch_typed<T>(
        &self,
        hook: &str,
        context: &HookContext,
        data: T,
    ) -> Result<DispatchOutcome<T>, HookError>
    where
        T: Serialize + DeserializeOwned + Send,
    {
        let slot = self.registry().slot(hook)?;
        run_typed(self, &slot, context, data).await
    }

    /// A typed handle on one declared hook.
    pub fn typed_hook<T>(&self, hook: &str) -> Result<TypedHook<T>, HookError>
    where
        T: Serialize + DeserializeOwned + Send,
    {
        Ok(TypedHook {
            hook: self.hook(hook)?,
            _type: PhantomData,
        })
    }
}

async fn run_typed<T>(
    dispatcher: &HookDispatcher,
    slot: &HookSlot,
    context: &HookContext,
    data: T,
) -> Result<DispatchOutcome<T>, HookError>
where
    T: Serialize + DeserializeOwned + Send,
{
    let json = encode(&slot.name, &data)?;
    let check = |value: &Value| T::deserialize(value).map(drop).map_err(|e| e.to_string());
    let outcome = dispatcher.run(slot, context, json, Some(&check)).await;
    if outcome.receipts.iter().all(|r| r.changed_fields.is_empty()) {
        // Nothing changed: hand the original back without a conversion.
        return Ok(outcome.map_data(|_| data));
    }
    let decoded = T::deserialize(&outcome.data).map_err(|e| HookError::Decode {
        hook: slot.name.to_string(),
        type_name: type_name::<T>(),
        message: e.to_string(),
    })?;
    Ok(outcome.map_data(|_| decoded))
}

fn encode<T: Serialize>(hook: &str, data: &T) -> Result<Value, HookError> {
    serde_json::to_value(data).map_err(|e| HookError::Encode {
        hook: hook.to_owned(),
        type_name: type_name::<T>(),
        message: e.to_string(),
    })
}

/// A declared hook whose data is a `T` (see [`HookDispatcher::typed_hook`]).
pub struct TypedHook<T> {
    hook: Hook,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for TypedHook<T> {
    fn clone(&self) -> Self {
        Self {
            hook: self.hook.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for TypedHook<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedHook")
            .field("hook", &self.hook.name())
            .field("type", &type_name::<T>())
            .finish()
    }
}

impl<T> TypedHook<T>
where
    T: Serialize + DeserializeOwned + Send,
{
    /// The hook's name.
    pub fn name(&self) -> &str {
        self.hook.name()
    }

    /// The hook's spec.
    pub fn spec(&self) -> &HookSpec {
        self.hook.spec()
    }

    /// Runs the hook over `data` and returns the (possibly changed) value.
    pub async fn dispatch(
        &self,
        context: &HookContext,
        data: T,
    ) -> Result<DispatchOutcome<T>, HookError> {
        run_typed(&self.hook.dispatcher, &self.hook.slot, context, data).await
    }

    /// Runs the hook without waiting (see [`HookDispatcher::emit`]); the value
    /// is encoded before this returns.
    pub fn emit(
        &self,
        context: HookContext,
        data: &T,
    ) -> Result<JoinHandle<DispatchOutcome>, HookError> {
        self.hook.emit(context, encode(self.name(), data)?)
    }
}
