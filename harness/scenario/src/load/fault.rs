//! `fault:` steps: which component, and what to do to it.

use super::Loader;
use crate::file::{FaultFile, Located};
use crate::names;
use crate::plan::{Fault, FaultAction, LabComponent};

impl Loader<'_> {
    pub(super) fn fault(&mut self, fault: &Located<FaultFile>) -> Fault {
        let body = fault.value();
        let given: Vec<(FaultAction, &Located<String>)> = [
            (FaultAction::Stop, &body.stop),
            (FaultAction::Start, &body.start),
            (FaultAction::Restart, &body.restart),
        ]
        .into_iter()
        .filter_map(|(action, component)| component.as_ref().map(|c| (action, c)))
        .collect();
        let (action, component) = match given.as_slice() {
            [one] => *one,
            [] => {
                self.error(
                    fault.location(),
                    "`fault` needs one of `stop`, `start` or `restart`, naming a component: `fault: {stop: registry}`",
                );
                return Fault {
                    action: FaultAction::Stop,
                    component: LabComponent::Registry,
                };
            }
            [first, ..] => {
                let keys: Vec<&str> = given.iter().map(|(a, _)| a.as_str()).collect();
                self.error(
                    fault.location(),
                    format!(
                        "`fault` has {} ({}): one fault step does one thing, split it",
                        keys.len(),
                        keys.join(", ")
                    ),
                );
                *first
            }
        };
        let text = component.value();
        let component = match LabComponent::parse(text) {
            Some(known) => known,
            None => {
                let hint = LabComponent::ALL
                    .into_iter()
                    .find(|c| names::edit_distance(c.as_str(), &text.to_lowercase()) <= 3)
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| {
                        let all: Vec<&str> = LabComponent::ALL.iter().map(|c| c.as_str()).collect();
                        format!("one of {}", all.join(", "))
                    });
                self.error(
                    component.location(),
                    format!(
                        "`{text}` is not a lab component a fault can {}: {hint}",
                        action.as_str()
                    ),
                );
                LabComponent::Registry
            }
        };
        Fault { action, component }
    }
}
