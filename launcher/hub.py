"""Whether a Hugging Face hub model can be loaded where this code runs: in the hub cache there,
or on a hub that answers one quick question.

`launch doctor` asks it for the machine that trains, and a job's driver asks it before any
worker starts: an unreachable hub otherwise costs about a minute of retries in every worker
before the run fails."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HubModel:
    ok: bool
    detail: str  # where the model comes from, or what is wrong
    fix: str = ""


def hub_model(name: str, timeout_s: float = 10) -> HubModel:
    """Where the hub model `name` loads from here. Needs huggingface_hub (the training stack)."""
    from huggingface_hub import model_info, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return HubModel(True, "a hub name, in the hub cache")
    try:
        model_info(name, timeout=timeout_s)
    except RepositoryNotFoundError:
        return HubModel(False, "no such model on the hub (or it is private: set HF_TOKEN)",
                        "check the name, e.g. `gpt2` or `org/model`")
    except Exception as err:  # offline, DNS, proxy, TLS: all mean the same to the job
        return HubModel(False, f"not in the hub cache, and the hub does not answer "
                        f"({type(err).__name__}: {str(err)[:120]})",
                        f"download it where the hub answers (`hf download {name} --local-dir "
                        "DIR`) and set model.name_or_path to that folder, or fill the hub "
                        "cache (HF_HOME) where the job trains")
    return HubModel(True, "on the hub, which answers")
