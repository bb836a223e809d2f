//! The compiled rule table. Each match field maps a request value to the set
//! of rules that accept it. Matching intersects those sets and takes the
//! lowest set bit, so the first listed rule wins.

use std::collections::HashMap;

use crate::catalog::{ModelId, ModelSet, ProviderSet};
use crate::task::TaskType;

use super::schema::Tier;

/// The maximum number of rules in a policy, the width of [`RuleSet`].
pub const MAX_RULES: usize = 1024;
const WORDS: usize = MAX_RULES / 64;

/// A set of rule indexes; `Copy` so matching never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleSet([u64; WORDS]);

impl RuleSet {
    pub const fn empty() -> Self {
        RuleSet([0; WORDS])
    }

    pub fn insert(&mut self, index: usize) {
        self.0[index / 64] |= 1u64 << (index % 64);
    }

    pub fn intersect_with(&mut self, other: &RuleSet) {
        for (word, other) in self.0.iter_mut().zip(other.0.iter()) {
            *word &= other;
        }
    }

    pub fn union_with(&mut self, other: &RuleSet) {
        for (word, other) in self.0.iter_mut().zip(other.0.iter()) {
            *word |= other;
        }
    }

    /// Returns the lowest index in the set.
    pub fn first(&self) -> Option<usize> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, word)| **word != 0)
            .map(|(i, word)| i * 64 + word.trailing_zeros() as usize)
    }
}

/// The changes a matched rule makes to the decision.
#[derive(Debug, Default, Clone)]
pub struct Action {
    pub pin: Option<ModelId>,
    pub providers: Option<ProviderSet>,
    pub candidates: Option<ModelSet>,
    pub quality_bar: Option<f64>,
    pub task_type: Option<TaskType>,
    pub skip_classifier: bool,
}

/// A rule's conditions after name checks; `None` matches anything.
#[derive(Debug, Default, Clone)]
pub struct Conditions {
    pub tenants: Option<Vec<String>>,
    pub routes: Option<Vec<String>>,
    pub labels: Vec<(String, String)>,
    pub tasks: Option<Vec<TaskType>>,
    pub tiers: Option<Vec<Tier>>,
}

impl Conditions {
    /// Returns true when `self` accepts every request that `later` accepts,
    /// which makes a later rule with those conditions unreachable.
    pub fn covers(&self, later: &Conditions) -> bool {
        list_covers(&self.tenants, &later.tenants)
            && list_covers(&self.routes, &later.routes)
            && list_covers(&self.tasks, &later.tasks)
            && list_covers(&self.tiers, &later.tiers)
            && self.labels.iter().all(|label| later.labels.contains(label))
    }
}

fn list_covers<T: PartialEq>(earlier: &Option<Vec<T>>, later: &Option<Vec<T>>) -> bool {
    match (earlier, later) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(earlier), Some(later)) => later.iter().all(|value| earlier.contains(value)),
    }
}

#[derive(Debug)]
pub struct Rule {
    pub name: Box<str>,
    pub action: Action,
}

/// The request values the rule table matches on.
pub struct MatchInput<'a> {
    pub tenant: &'a str,
    pub route: &'a str,
    pub labels: &'a HashMap<String, String>,
    pub task: Option<TaskType>,
    pub tier: Tier,
}

/// Rules for one string-valued field: the rules that accept each value
/// mentioned anywhere, and the rules that accept every value.
#[derive(Debug)]
struct StringField {
    by_value: HashMap<Box<str>, RuleSet>,
    unconditioned: RuleSet,
}

impl StringField {
    fn build<'a>(conditions: impl Iterator<Item = Option<&'a [String]>>) -> Self {
        let mut unconditioned = RuleSet::empty();
        let mut listed: HashMap<Box<str>, RuleSet> = HashMap::new();
        for (index, values) in conditions.enumerate() {
            match values {
                None => unconditioned.insert(index),
                Some(values) => {
                    for value in values {
                        listed
                            .entry(value.as_str().into())
                            .or_insert(RuleSet::empty())
                            .insert(index);
                    }
                }
            }
        }
        for set in listed.values_mut() {
            set.union_with(&unconditioned);
        }
        StringField {
            by_value: listed,
            unconditioned,
        }
    }

    fn accepting(&self, value: &str) -> &RuleSet {
        self.by_value.get(value).unwrap_or(&self.unconditioned)
    }
}

#[derive(Debug)]
pub struct RuleTable {
    rules: Vec<Rule>,
    all: RuleSet,
    tenant: StringField,
    route: StringField,
    labels: Vec<(Box<str>, StringField)>,
    /// Indexed by [`TaskType::index`], with the last entry for requests that
    /// declare no task.
    tasks: [RuleSet; TaskType::COUNT + 1],
    tiers: [RuleSet; 4],
}

impl RuleTable {
    /// Builds the table; `rules` and `conditions` are parallel and hold at
    /// most [`MAX_RULES`] entries, which the compiler checks first.
    pub fn build(rules: Vec<Rule>, conditions: &[Conditions]) -> Self {
        let mut all = RuleSet::empty();
        (0..rules.len()).for_each(|i| all.insert(i));

        let tenant = StringField::build(conditions.iter().map(|c| c.tenants.as_deref()));
        let route = StringField::build(conditions.iter().map(|c| c.routes.as_deref()));
        let labels = label_fields(conditions);

        let mut tasks = [RuleSet::empty(); TaskType::COUNT + 1];
        let mut tiers = [RuleSet::empty(); 4];
        for (index, condition) in conditions.iter().enumerate() {
            for (slot, set) in tasks.iter_mut().enumerate() {
                let task = TaskType::ALL.get(slot).copied();
                if accepts(&condition.tasks, task) {
                    set.insert(index);
                }
            }
            for (slot, set) in tiers.iter_mut().enumerate() {
                if accepts(&condition.tiers, Some(TIERS[slot])) {
                    set.insert(index);
                }
            }
        }

        RuleTable {
            rules,
            all,
            tenant,
            route,
            labels,
            tasks,
            tiers,
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Returns the first rule whose conditions all accept `input`.
    pub fn find(&self, input: &MatchInput<'_>) -> Option<&Rule> {
        if self.rules.is_empty() {
            return None;
        }
        let mut matched = self.all;
        matched.intersect_with(self.tenant.accepting(input.tenant));
        matched.intersect_with(self.route.accepting(input.route));
        for (key, field) in &self.labels {
            let accepted = match input.labels.get(&**key) {
                Some(value) => field.accepting(value),
                None => &field.unconditioned,
            };
            matched.intersect_with(accepted);
        }
        let task_slot = input.task.map_or(TaskType::COUNT, TaskType::index);
        matched.intersect_with(&self.tasks[task_slot]);
        matched.intersect_with(&self.tiers[tier_slot(input.tier)]);
        matched.first().and_then(|index| self.rules.get(index))
    }
}

const TIERS: [Tier; 4] = [Tier::Best, Tier::High, Tier::Standard, Tier::Economy];

fn tier_slot(tier: Tier) -> usize {
    match tier {
        Tier::Best => 0,
        Tier::High => 1,
        Tier::Standard => 2,
        Tier::Economy => 3,
    }
}

fn accepts<T: PartialEq>(allowed: &Option<Vec<T>>, value: Option<T>) -> bool {
    match (allowed, value) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(allowed), Some(value)) => allowed.contains(&value),
    }
}

/// Builds one field per label key that any rule names. A rule without a condition
/// on that key accepts any value, including a missing label.
fn label_fields(conditions: &[Conditions]) -> Vec<(Box<str>, StringField)> {
    let mut keys: Vec<&str> = conditions
        .iter()
        .flat_map(|c| c.labels.iter().map(|(key, _)| key.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();

    keys.into_iter()
        .map(|key| {
            let per_rule: Vec<Option<Vec<String>>> = conditions
                .iter()
                .map(|c| {
                    c.labels
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, value)| vec![value.clone()])
                })
                .collect();
            let field = StringField::build(per_rule.iter().map(Option::as_deref));
            (key.into(), field)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str) -> Rule {
        Rule {
            name: name.into(),
            action: Action::default(),
        }
    }

    fn input<'a>(tenant: &'a str, labels: &'a HashMap<String, String>) -> MatchInput<'a> {
        MatchInput {
            tenant,
            route: "",
            labels,
            task: None,
            tier: Tier::Standard,
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let conditions = vec![
            Conditions {
                tenants: Some(vec!["a".into()]),
                ..Default::default()
            },
            Conditions::default(),
        ];
        let table = RuleTable::build(vec![rule("only-a"), rule("anyone")], &conditions);
        let labels = HashMap::new();
        assert_eq!(&*table.find(&input("a", &labels)).unwrap().name, "only-a");
        assert_eq!(&*table.find(&input("b", &labels)).unwrap().name, "anyone");
    }

    #[test]
    fn labels_must_all_match() {
        let conditions = vec![Conditions {
            labels: vec![
                ("team".into(), "legal".into()),
                ("env".into(), "prod".into()),
            ],
            ..Default::default()
        }];
        let table = RuleTable::build(vec![rule("legal-prod")], &conditions);
        let mut labels = HashMap::from([("team".to_string(), "legal".to_string())]);
        assert!(table.find(&input("", &labels)).is_none());
        labels.insert("env".into(), "prod".into());
        assert!(table.find(&input("", &labels)).is_some());
        labels.insert("env".into(), "dev".into());
        assert!(table.find(&input("", &labels)).is_none());
    }

    #[test]
    fn task_condition_needs_declared_task() {
        let conditions = vec![Conditions {
            tasks: Some(vec![TaskType::Code]),
            ..Default::default()
        }];
        let table = RuleTable::build(vec![rule("code")], &conditions);
        let labels = HashMap::new();
        let mut request = input("", &labels);
        assert!(table.find(&request).is_none());
        request.task = Some(TaskType::Code);
        assert!(table.find(&request).is_some());
        request.task = Some(TaskType::Math);
        assert!(table.find(&request).is_none());
    }

    #[test]
    fn rule_beyond_first_word_matches() {
        let count = 130;
        let rules = (0..count).map(|i| rule(&format!("r{i}"))).collect();
        let conditions: Vec<Conditions> = (0..count)
            .map(|i| Conditions {
                tenants: Some(vec![format!("t{i}")]),
                ..Default::default()
            })
            .collect();
        let table = RuleTable::build(rules, &conditions);
        let labels = HashMap::new();
        assert_eq!(&*table.find(&input("t129", &labels)).unwrap().name, "r129");
    }

    #[test]
    fn covers_detects_shadowed_rule() {
        let broad = Conditions {
            tenants: Some(vec!["a".into(), "b".into()]),
            ..Default::default()
        };
        let narrow = Conditions {
            tenants: Some(vec!["a".into()]),
            labels: vec![("team".into(), "x".into())],
            ..Default::default()
        };
        assert!(broad.covers(&narrow));
        assert!(!narrow.covers(&broad));
        assert!(Conditions::default().covers(&narrow));
    }
}
