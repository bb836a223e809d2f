#!/usr/bin/env python3
"""Derive the `providers:` and `models:` sections of policies/default.yaml.

Usage: python3 scripts/derive_catalog.py DATA_DIR

DATA_DIR is the folder that contains catalog/ and quality/ with the public
data files named below. The script prints YAML to stdout, and the same input
files always give the same output. It uses only the standard library.

Prices, context windows, output limits and capabilities come from the LiteLLM
model catalog. Quality per task type comes from two public leaderboards,
LiveBench and LMArena (text arena), normalised to 0..1 as described at
`normalise_livebench` and `normalise_arena`.
"""

import csv
import datetime
import json
import sys
from pathlib import Path

# Entries whose deprecation_date falls before this day are skipped.
REFERENCE_DATE = datetime.date(2026, 12, 4)

LITELLM_FILE = "catalog/litellm_model_prices_and_context_window.json"
LIVEBENCH_TABLE_FILE = "quality/livebench_table_2026_01_08.csv"
LIVEBENCH_CATEGORIES_FILE = "quality/livebench_categories_2026_01_08.json"
ARENA_FILE = "quality/lmarena_leaderboard_text_by_category.json"

# Upstream origin and snapshot date of each input file, written into the
# output header.
SNAPSHOTS = {
    LITELLM_FILE: "LiteLLM 1.110.2 wheel, model_prices_and_context_window_backup.json, "
    "collected 2026-12-04",
    LIVEBENCH_TABLE_FILE: "LiveBench/livebench.github.io public/table_2026_01_08.csv, "
    "table dated 2026-01-08, although its rows include models released later",
    LIVEBENCH_CATEGORIES_FILE: "LiveBench/livebench.github.io "
    "public/categories_2026_01_08.json",
    ARENA_FILE: "lmarena/arena-catalog data/leaderboard-text.json, last changed 2025-12-11",
}

# Policy provider name -> the litellm_provider value of its first-party entries.
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gemini",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "xai",
}

# Name mapping across sources, one row per model:
# (policy provider, LiteLLM catalog key, LiveBench row, LMArena model key).
# The policy model name is the catalog key without its "provider/" prefix,
# which is the model id the provider's API accepts. None means the model is
# not on that leaderboard.
#
# LiveBench lists several runs of one model at different reasoning settings.
# The row chosen is the run with no suffix where there is one (the provider's
# default settings), otherwise the high-effort or high-thinking run, which is
# the default effort of Anthropic's and Gemini 3 models.
# NOTE: OpenAI's default reasoning effort differs between GPT-5 releases, so
# the gpt-5.5 and gpt-5.4 rows (high effort) may overstate a default call.
MODEL_TABLE = [
    ("openai", "gpt-5.5", "gpt-5.5-high", None),
    ("openai", "gpt-5.4", "gpt-5.4-high", None),
    ("openai", "gpt-5.4-mini", "gpt-5.4-mini", None),
    ("openai", "gpt-5.4-nano", "gpt-5.4-nano", None),
    ("anthropic", "claude-fable-5", "claude-fable-5-high-effort", None),
    ("anthropic", "claude-opus-4-8", "claude-opus-4-8-high-effort", None),
    ("anthropic", "claude-sonnet-4-6", "claude-sonnet-4-6-thinking-auto-high-effort", None),
    ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"),
    ("google", "gemini/gemini-3.1-pro-preview", "gemini-3.1-pro-preview-high", None),
    ("google", "gemini/gemini-3.5-flash", "gemini-3.5-flash-high", None),
    ("google", "gemini/gemini-3-flash-preview", "gemini-3-flash-preview-high", None),
    ("google", "gemini/gemini-3.1-flash-lite", "gemini-3.1-flash-lite-preview-high", None),
    ("mistral", "mistral/mistral-large-2512", None, "mistral-large-3"),
    ("deepseek", "deepseek-v4-pro", "deepseek-v4-pro", None),
    ("deepseek", "deepseek-v4-flash", "deepseek-v4-flash", None),
    ("xai", "xai/grok-4.3", "grok-4.3", None),
]

TASK_TYPES = [
    "code",
    "math",
    "reasoning",
    "summarization",
    "extraction",
    "classification",
    "creative_writing",
    "open_qa",
    "closed_qa",
    "rewrite",
    "chat",
]

# Task type -> (LiveBench categories or single tasks, LMArena categories).
# Each LiveBench entry is a category from the categories file or one task
# column of the table. Task types with no entry on either board are filled
# from the model's overall score.
TASK_SOURCES = {
    "code": (["Coding"], ["coding"]),
    "math": (["Mathematics"], ["math"]),
    "reasoning": (["Reasoning"], ["hard_6"]),
    "summarization": (["summarize"], ["long_user"]),
    "extraction": (["Data Analysis"], []),
    "classification": ([], []),
    "creative_writing": (["story_generation"], ["creative_writing"]),
    "open_qa": ([], ["expert"]),
    "closed_qa": ([], []),
    "rewrite": (["paraphrase", "simplify"], ["if"]),
    "chat": ([], ["multiturn"]),
}

# The overall score averages all seven LiveBench categories (as LiveBench's
# own global average does) with the LMArena "full" category.
OVERALL_ARENA_CATEGORY = "full"

# An Arena rating this many points below the category's top rating maps to
# 0.0, and the top rating maps to 1.0. The value comes from a one-off check
# outside this script on the 14 models found on both boards. For each, the
# span that makes its LiveBench and Arena overall scores equal was computed,
# and the median was near 220 points, so 220 puts the two boards on about the
# same scale.
ARENA_SPAN = 220.0


def load_json(data_dir, name):
    with open(data_dir / name, encoding="utf-8") as handle:
        return json.load(handle)


def load_livebench(data_dir):
    """Load the LiveBench table as {row: {task: score}} and the categories."""
    categories = load_json(data_dir, LIVEBENCH_CATEGORIES_FILE)
    table = {}
    with open(data_dir / LIVEBENCH_TABLE_FILE, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            scores = {}
            for task, value in row.items():
                if task != "model" and value not in ("", None):
                    scores[task] = float(value)
            table[row["model"]] = scores
    return table, categories


def livebench_tasks(entry, categories, table):
    """Return the task columns behind a category name or a single task name."""
    if entry in categories:
        return categories[entry]
    any_row = next(iter(table.values()))
    if entry not in any_row:
        raise SystemExit(f"error: LiveBench has no category or task named {entry!r}")
    return [entry]


def normalise_livebench(table, tasks):
    """Map each row's mean score over `tasks` to its ratio to the best row.

    LiveBench scores run 0..100, but the hardest tasks top out far below 100,
    so dividing by 100 would make every model look weak on them. Dividing by
    the best mean in the table sets the leaderboard's best model to 1.0.
    Rows missing any of the tasks get no score.
    """
    means = {}
    for row, scores in table.items():
        if all(task in scores for task in tasks):
            means[row] = sum(scores[task] for task in tasks) / len(tasks)
    best = max(means.values())
    return {row: mean / best for row, mean in means.items()}


def normalise_arena(arena, category):
    """Map each model's rating in `category` linearly onto 0..1.

    The category's top rating maps to 1.0 and a rating ARENA_SPAN points
    lower maps to 0.0. Ratings below that clamp to 0.0.
    """
    ratings = {model: entry["rating"] for model, entry in arena[category].items()}
    top = max(ratings.values())
    return {model: max(0.0, 1.0 - (top - rating) / ARENA_SPAN) for model, rating in ratings.items()}


def mean(values):
    return sum(values) / len(values) if values else None


class QualityScorer:
    """Scores catalog models per task type from the two leaderboards."""

    def __init__(self, data_dir):
        self.livebench, self.categories = load_livebench(data_dir)
        self.arena = load_json(data_dir, ARENA_FILE)
        self.livebench_scores = {}
        self.arena_scores = {}

    def livebench_score(self, row, entries):
        """Return the mean normalised score of `row` over `entries`, or None."""
        values = []
        for entry in entries:
            if entry not in self.livebench_scores:
                tasks = livebench_tasks(entry, self.categories, self.livebench)
                self.livebench_scores[entry] = normalise_livebench(self.livebench, tasks)
            value = self.livebench_scores[entry].get(row)
            if value is not None:
                values.append(value)
        return mean(values)

    def arena_score(self, model, categories):
        """Return the mean normalised score of `model` over `categories`, or None."""
        values = []
        for category in categories:
            if category not in self.arena_scores:
                self.arena_scores[category] = normalise_arena(self.arena, category)
            value = self.arena_scores[category].get(model)
            if value is not None:
                values.append(value)
        return mean(values)

    def check_names(self, livebench_row, arena_model):
        if livebench_row is not None and livebench_row not in self.livebench:
            raise SystemExit(f"error: LiveBench row {livebench_row!r} not found")
        if arena_model is not None and arena_model not in self.arena[OVERALL_ARENA_CATEGORY]:
            raise SystemExit(f"error: LMArena model {arena_model!r} not found")

    def score(self, livebench_row, arena_model):
        """Return ({task or "default": score}, [task types filled from overall])."""
        self.check_names(livebench_row, arena_model)
        overall_parts = []
        if livebench_row is not None:
            overall_parts.append(self.livebench_score(livebench_row, list(self.categories)))
        if arena_model is not None:
            overall_parts.append(self.arena_score(arena_model, [OVERALL_ARENA_CATEGORY]))
        overall = mean([part for part in overall_parts if part is not None])
        if overall is None:
            raise SystemExit(f"error: no leaderboard score for {livebench_row or arena_model}")

        quality = {"default": overall}
        filled = []
        for task in TASK_TYPES:
            livebench_entries, arena_categories = TASK_SOURCES[task]
            parts = []
            if livebench_row is not None and livebench_entries:
                parts.append(self.livebench_score(livebench_row, livebench_entries))
            if arena_model is not None and arena_categories:
                parts.append(self.arena_score(arena_model, arena_categories))
            value = mean([part for part in parts if part is not None])
            if value is None:
                value = overall
                filled.append(task)
            quality[task] = value
        return quality, filled


def catalog_entry(catalog, provider, key):
    """Look up and check one LiteLLM entry, returning None if it is deprecated."""
    entry = catalog.get(key)
    if entry is None:
        raise SystemExit(f"error: LiteLLM catalog has no entry {key!r}")
    if entry.get("litellm_provider") != PROVIDERS[provider]:
        raise SystemExit(
            f"error: {key!r} has litellm_provider {entry.get('litellm_provider')!r}, "
            f"expected the first-party {PROVIDERS[provider]!r}"
        )
    if entry.get("mode") != "chat":
        raise SystemExit(f"error: {key!r} has mode {entry.get('mode')!r}, expected 'chat'")
    deprecation = entry.get("deprecation_date")
    if deprecation and datetime.date.fromisoformat(deprecation) < REFERENCE_DATE:
        return None
    return entry


def capabilities(entry):
    """Return the policy capabilities of a LiteLLM entry, in a fixed order."""
    names = []
    if entry.get("supports_function_calling"):
        names.append("tools")
    if entry.get("supports_vision"):
        names.append("vision")
    if entry.get("supports_response_schema") or entry.get("supports_native_structured_output"):
        names.append("json_output")
    return names


def usd_per_mtok(cost_per_token):
    """Convert a USD-per-token price to USD per million tokens, without float noise."""
    return f"{round(cost_per_token * 1_000_000, 6):g}"


def header_lines(skipped):
    lines = [
        "# Generated by `python3 scripts/derive_catalog.py DATA_DIR`. Edit the script, not this section.",
        "# Data files (relative to DATA_DIR), upstream origin and snapshot:",
    ]
    for name, origin in SNAPSHOTS.items():
        lines.append(f"#   {name}: {origin}")
    lines += [
        f"# Reference date {REFERENCE_DATE.isoformat()}: LiteLLM entries deprecated before it are skipped.",
        "# Prices, context_tokens (max_input_tokens) and max_output_tokens are the LiteLLM list values.",
        "# Capabilities: tools = supports_function_calling, vision = supports_vision,",
        "#   json_output = supports_response_schema or supports_native_structured_output.",
        "# Quality, 0..1 per task type:",
        "#   LiveBench: a row's mean score over a category's tasks (or one task), divided by the",
        "#     best mean any row in the table reaches, so the board's best model scores 1.0.",
        f"#   LMArena: 1.0 at the category's top rating, falling linearly to 0.0 at {ARENA_SPAN:g}",
        "#     points below it.",
        "#   A task's score is the mean of the two boards where both have data, else the one that has.",
        "#   default (overall) = mean of the seven LiveBench categories, averaged with LMArena 'full'.",
        "#   Task type <- LiveBench categories or tasks | LMArena categories:",
    ]
    for task in TASK_TYPES:
        livebench_entries, arena_categories = TASK_SOURCES[task]
        if not livebench_entries and not arena_categories:
            lines.append(f"#     {task}: no leaderboard data, filled from default")
            continue
        livebench_text = ", ".join(livebench_entries) or "-"
        arena_text = ", ".join(arena_categories) or "-"
        lines.append(f"#     {task}: {livebench_text} | {arena_text}")
    lines.append("#   Scores are rounded to 2 decimals.")
    for key in skipped:
        lines.append(f"# Skipped as deprecated: {key}")
    return lines


def policy_model_name(key):
    """Strip the "provider/" prefix of a LiteLLM key, leaving the provider's model id."""
    return key.split("/", 1)[1] if "/" in key else key


def model_lines(provider, key, entry, livebench_row, arena_model, quality, filled):
    name = policy_model_name(key)
    lines = [
        f"  # Sources: LiteLLM {key}, LiveBench {livebench_row or 'none'}, LMArena {arena_model or 'none'}",
    ]
    if filled:
        lines.append(f"  # filled from default (no leaderboard data): {', '.join(filled)}")
    lines += [
        f"  - name: {name}",
        f"    provider: {provider}",
        f"    input_usd_per_mtok: {usd_per_mtok(entry['input_cost_per_token'])}",
        f"    output_usd_per_mtok: {usd_per_mtok(entry['output_cost_per_token'])}",
        f"    context_tokens: {entry['max_input_tokens']}",
        f"    max_output_tokens: {entry['max_output_tokens']}",
        f"    capabilities: [{', '.join(capabilities(entry))}]",
        "    quality:",
        f"      default: {quality['default']:.2f}",
    ]
    for task in TASK_TYPES:
        lines.append(f"      {task}: {quality[task]:.2f}")
    return lines


def main(argv):
    if len(argv) != 2:
        print("usage: derive_catalog.py DATA_DIR", file=sys.stderr)
        return 2
    data_dir = Path(argv[1])
    for name in SNAPSHOTS:
        if not (data_dir / name).is_file():
            print(f"error: {data_dir / name} not found. Pass the folder that contains "
                  "catalog/ and quality/.", file=sys.stderr)
            return 1
    catalog = load_json(data_dir, LITELLM_FILE)
    scorer = QualityScorer(data_dir)

    body = ["providers:"]
    body += [f"  - name: {provider}" for provider in PROVIDERS]
    body.append("models:")
    skipped = []
    names = set()
    for provider, key, livebench_row, arena_model in MODEL_TABLE:
        entry = catalog_entry(catalog, provider, key)
        if entry is None:
            print(f"warning: skipped {key}: deprecated before {REFERENCE_DATE}", file=sys.stderr)
            skipped.append(key)
            continue
        quality, filled = scorer.score(livebench_row, arena_model)
        name = policy_model_name(key)
        if name in names:
            raise SystemExit(f"error: duplicate model name {name!r}")
        names.add(name)
        body += model_lines(provider, key, entry, livebench_row, arena_model, quality, filled)

    print("\n".join(header_lines(skipped) + body))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
