"""Target vectors v*: the hidden state that makes the model say the target.

For each fact, a residual delta is added to a decoder layer's output at one token position and
optimised by Adam so that the model predicts the target after the prompt, also after generated
prefixes (generalisation), while a KL term keeps the next-token distribution after
"<subject> is a" close to the unedited one, weight decay keeps the delta small relative to the
hidden state, and after every step the delta's norm is clamped to clamp_norm_factor times the
original hidden state's norm (MEMIT, Meng et al. 2023). JEEP (its Eq. 11) optimises two deltas
jointly, one per site, with the KL term on the low site only; both cases are `DeltaSite`s.
The loss is read at the model's output, i.e. v_loss_layer is the last layer (as in Table 26).

Facts are optimised in batches; their losses are independent and Adam acts element-wise, so
this gives the same deltas as one optimisation per fact, except that a batch stops early only
when every fact in it reached the stopping loss.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from tqdm import tqdm

from ripplebench.core.models import LoadedModel

from ..base import AtomicFact
from .modules import (
    ModulePaths,
    cache_past,
    capture_outputs,
    edit_output,
    forward_until,
    logits_at,
    replay_layers,
)
from .rows import Rows, concat_rows, encode_rows, split_rows

KL_PROMPT = "{} is a"
PREFIX_STARTS = ("The", "Therefore", "Because", "I", "You")
EARLY_STOP_LOSS = 5e-2  # MEMIT's stopping threshold


@dataclass(frozen=True)
class DeltaSite:
    """A decoder layer output and token position where a delta is optimised."""

    layer: int
    position: str  # "subject_last" or "prompt_last"
    clamp_norm_factor: float
    weight_decay: float
    on_kl_prompts: bool = True


@dataclass(frozen=True)
class VStarSettings:
    steps: int
    lr: float
    kl_factor: float
    facts_per_batch: int


@contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """Turn off gradients for the model's parameters (only the deltas are trained)."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


@torch.no_grad()
def generate_prefixes(loaded: LoadedModel, count: int, length: int, seed: int) -> list[str]:
    """`count` model-sampled texts of `length` tokens, each ending in ". " (MEMIT's prefixes)."""
    if count <= 0:
        return []
    tokenizer = loaded.tokenizer
    starts = [PREFIX_STARTS[index % len(PREFIX_STARTS)] for index in range(count)]
    encoded = tokenizer(starts, return_tensors="pt", padding=True).to(loaded.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        output = loaded.model.generate(
            **encoded, do_sample=True, top_k=5, max_new_tokens=length, pad_token_id=tokenizer.pad_token_id
        )
    texts = tokenizer.batch_decode(output, skip_special_tokens=True)
    return [" ".join(text.replace("{", " ").replace("}", " ").split()) + ". " for text in texts]


def _additions(
    model: torch.nn.Module,
    paths: ModulePaths,
    rows: Rows,
    sites: Sequence[DeltaSite],
    deltas: Sequence[torch.Tensor],
    kl_rows: torch.Tensor,
) -> ExitStack:
    """Hooks that add each site's per-fact delta at that site's position of every row
    (on the KL rows only for sites with `on_kl_prompts`)."""
    stack = ExitStack()
    index = torch.arange(len(rows.fact), device=rows.fact.device)
    for site, delta in zip(sites, deltas):
        position = rows.position(site.position)
        keep = torch.ones_like(kl_rows) if site.on_kl_prompts else ~kl_rows

        def change(hidden: torch.Tensor, position=position, delta=delta, keep=keep) -> torch.Tensor:
            values = delta[rows.fact] * keep.unsqueeze(-1)
            return hidden + torch.zeros_like(hidden).index_put((index, position), values.to(hidden.dtype))

        stack.enter_context(edit_output(paths.layer(model, site.layer), change))
    return stack


def _optimise_batch(
    loaded: LoadedModel,
    paths: ModulePaths,
    facts: Sequence[AtomicFact],
    prefixes: Sequence[str],
    sites: Sequence[DeltaSite],
    settings: VStarSettings,
    progress: tqdm,
) -> tuple[list[torch.Tensor], torch.Tensor, int]:
    """v* per site for a batch of facts, their final target NLL, and the steps taken.

    One batch holds the rewriting rows (each fact after each prefix, with its target) and then
    one KL row per fact. What the deltas cannot change is computed once: the tokens before the
    first delta's position (causal attention: their keys and values are cached) and, for the
    other tokens, the layers up to the lowest site (replayed).
    """
    model, device, count = loaded.model, loaded.device, len(facts)
    tokenizer = loaded.tokenizer
    pad_id = tokenizer.pad_token_id or 0
    rewrite = encode_rows(tokenizer, facts, ["", *prefixes])
    kl_facts = [AtomicFact(KL_PROMPT.format(fact.subject), "", fact.subject) for fact in facts]
    whole = concat_rows(rewrite, encode_rows(tokenizer, kl_facts, with_targets=False), pad_id).to(device)
    cut = torch.stack([whole.position(site.position) for site in sites]).min(0).values
    split = split_rows(whole, cut, pad_id)
    past = cache_past(model, split)
    rows = split.current  # from here on, positions count from each row's cut
    written = len(rewrite.fact)  # rows before this index are rewriting rows, the rest KL rows
    is_kl = torch.arange(len(rows.fact), device=device) >= written
    bare = torch.arange(count, device=device) * (1 + len(prefixes))
    index = torch.arange(len(rows.fact), device=device)
    layer_modules = {number: paths.layer(model, site.layer) for number, site in enumerate(sites)}

    # Logits are needed only where a target token is predicted and at the KL rows' subject.
    scored = rows.labels != -100
    scored[written + torch.arange(count, device=device), rows.subject_last[written:]] = True

    def forward(deltas: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        with _additions(model, paths, rows, sites, deltas, is_kl), capture_outputs(layer_modules) as outputs:
            logits = logits_at(model, rows.input_ids, split.attention_mask, scored, past)
        hidden = [outputs[number][index, rows.position(site.position)] for number, site in enumerate(sites)]
        return logits, hidden

    def losses(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-fact target NLL and the KL rows' log-probabilities, from the scored positions' logits."""
        targets = logits[: int(scored[:written].sum())]
        labels = rows.labels[scored][: len(targets)]
        token_nll = -torch.log_softmax(targets.float(), dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
        row_of_token = torch.nonzero(scored[:written])[:, 0]
        tokens_per_row = scored[:written].sum(1)
        row_nll = torch.zeros(written, device=device).index_add(0, row_of_token, token_nll) / tokens_per_row
        fact = rows.fact[:written]
        nll = torch.zeros(count, device=device).index_add(0, fact, row_nll) / torch.bincount(fact, minlength=count)
        return nll, torch.log_softmax(logits[len(targets) :].float(), dim=-1)

    first_site = min(site.layer for site in sites)

    def run_once() -> None:
        forward_until(model, paths.layer(model, first_site), rows.input_ids, split.attention_mask, past)

    # The lowest site's own output is replayed too: its delta is added by a hook, which still runs.
    with replay_layers(model, paths, first_site + 1, run_once), frozen(model):
        zeros = [torch.zeros(count, model.config.hidden_size, device=device) for _ in sites]
        with torch.no_grad():
            logits, initial = forward(zeros)
        _, kl_initial = losses(logits)
        initial_norms = [hidden[bare].norm(dim=-1) for hidden in initial]
        deltas = [torch.zeros_like(zero, requires_grad=True) for zero in zeros]
        optimizer = torch.optim.Adam(deltas, lr=settings.lr)
        steps = 0
        while steps < settings.steps:
            steps += 1
            nll, kl_log_probs = losses(forward(deltas)[0])
            kl = torch.nn.functional.kl_div(kl_initial, kl_log_probs, log_target=True, reduction="none").sum(-1)
            loss = nll + settings.kl_factor * kl
            for site, delta, norm in zip(sites, deltas, initial_norms):
                loss = loss + site.weight_decay * delta.norm(dim=-1) ** 2 / norm**2
            if bool((loss < EARLY_STOP_LOSS).all()):
                break
            progress.update()
            progress.set_postfix(loss=f"{loss.max().item():.3f}")
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
            with torch.no_grad():
                for site, delta, norm in zip(sites, deltas, initial_norms):
                    limit = site.clamp_norm_factor * norm
                    delta.mul_((limit / delta.norm(dim=-1).clamp(min=1e-12)).clamp(max=1.0).unsqueeze(-1))
        with torch.no_grad():
            logits, hidden = forward([delta.detach() for delta in deltas])
    final_nll, _ = losses(logits)
    return [values[bare] for values in hidden], final_nll, steps


def optimise_targets(
    loaded: LoadedModel,
    paths: ModulePaths,
    facts: Sequence[AtomicFact],
    prefixes: Sequence[str],
    sites: Sequence[DeltaSite],
    settings: VStarSettings,
) -> tuple[list[torch.Tensor], dict[str, float]]:
    """v* for every fact at every site ([facts, hidden] per site) and a summary for results."""
    per_site: list[list[torch.Tensor]] = [[] for _ in sites]
    nll, steps = [], []
    batches = range(0, len(facts), settings.facts_per_batch)
    progress = tqdm(total=len(batches) * settings.steps, desc=f"v* for {len(facts)} facts", unit="step", leave=False)
    for start in batches:
        batch = facts[start : start + settings.facts_per_batch]
        values, batch_nll, batch_steps = _optimise_batch(loaded, paths, batch, prefixes, sites, settings, progress)
        for collected, value in zip(per_site, values):
            collected.append(value)
        nll.append(batch_nll)
        steps.append(batch_steps)
    progress.close()
    summary = {"vstar_target_nll": float(torch.cat(nll).mean()), "vstar_max_steps": max(steps)}
    return [torch.cat(collected) for collected in per_site], summary
