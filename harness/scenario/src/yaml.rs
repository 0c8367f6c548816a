//! Kubernetes objects from YAML, on a stack deep enough for them.
//!
//! serde-saphyr parses by recursive descent, about ten frames per level of
//! nesting, and CRDs nest their OpenAPI schemas 30–40 levels deep (Argo
//! CD's Application CRD does). A debug build's frames are large: parsing
//! that CRD overflowed the 2 MiB stack of a test or tokio worker thread. So
//! every multi-document parse of objects runs here, on a thread of its own
//! with [`DEEP_STACK_BYTES`] of stack (reserved, not used: only the pages
//! it touches are ever allocated), whatever thread calls it.

use serde_json::Value;

/// The stack of the parsing thread: room for far more than serde-saphyr's
/// own limit of 64 levels of nesting, in a debug build.
pub const DEEP_STACK_BYTES: usize = 64 << 20;

/// The documents of a multi-document YAML stream as JSON values, empty
/// documents dropped.
pub fn documents(text: &str) -> Result<Vec<Value>, serde_saphyr::Error> {
    let parsed = on_deep_stack(|| serde_saphyr::from_multiple::<Value>(text))?;
    Ok(parsed.into_iter().filter(|d| !d.is_null()).collect())
}

/// Runs `job` on a thread with [`DEEP_STACK_BYTES`] of stack and returns
/// what it returns (a panic in it panics here). Where no thread can be
/// started, `job` runs on the caller's.
pub fn on_deep_stack<R: Send>(job: impl FnOnce() -> R + Send) -> R {
    let mut job = Some(job);
    let ran = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("deep-stack".into())
            .stack_size(DEEP_STACK_BYTES)
            .spawn_scoped(scope, || job.take().map(|job| job()));
        spawned.ok().map(|handle| handle.join())
    });
    match ran {
        Some(Ok(Some(result))) => result,
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        // The thread could not start (it never took the job).
        Some(Ok(None)) | None => match job.take() {
            Some(job) => job(),
            None => unreachable!("the job ran or is still here"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document nested `depth` mappings deep, like a CRD's schema.
    fn nested(depth: usize) -> String {
        let mut text = String::new();
        for level in 0..depth {
            text.push_str(&"  ".repeat(level));
            text.push_str(&format!("k{level}:\n"));
        }
        text.push_str(&"  ".repeat(depth));
        text.push_str("leaf: 1\n");
        text
    }

    #[test]
    fn a_document_deeper_than_a_crd_parses_on_a_small_thread() {
        // 60 levels (serde-saphyr's own limit is 64) on a quarter of a
        // tokio worker's stack: parsed there, a debug build overflows it
        // (Argo CD's CRDs, about 40 levels, overflowed 2 MiB in a lab).
        let handle = std::thread::Builder::new()
            .stack_size(512 << 10)
            .spawn(|| documents(&format!("{}---\n---\nb: 2\n", nested(60))))
            .unwrap();
        let docs = handle.join().expect("no overflow").expect("valid YAML");
        assert_eq!(docs.len(), 2, "the empty document is dropped");
        let mut value = &docs[0];
        for level in 0..60 {
            value = &value[format!("k{level}")];
        }
        assert_eq!(value["leaf"], 1);
        assert_eq!(docs[1]["b"], 2);
    }

    #[test]
    fn errors_and_panics_come_back_to_the_caller() {
        assert!(documents("a: [1, 2").is_err());
        let caught = std::panic::catch_unwind(|| on_deep_stack(|| panic!("from the job")));
        let message = caught.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"from the job"));
    }
}
