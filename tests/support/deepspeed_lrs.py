"""Train a tiny model 2 steps with DeepSpeed ZeRO in this one process (rank 0 of 1, gloo) under
a method, and print the learning rate of each of the ZeRO optimizer's parameter groups as
JSON. Run as a script by test_methods.py: DeepSpeed's process group must not leak into the
test process.

    python tests/support/deepspeed_lrs.py MODEL_DIR STAGE METHOD_JSON
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile


def main(model_path: str, stage: int, method: dict) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0", GLOO_SOCKET_IFNAME="lo")
    from pydantic import TypeAdapter
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        TrainingArguments,
    )

    from jobs.deepspeed_config import deepspeed_config, skip_inference_collectives
    from jobs.methods import apply_method
    from jobs.trainer import trainer_class
    from launcher.spec.method import MethodSpec
    from launcher.spec.models import ScaleSpec

    skip_inference_collectives()  # as jobs.train does
    # The arguments come first, so ZeRO-3 partitions the weights as they load (as in jobs).
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=2, learning_rate=1e-3,
        lr_scheduler_type="constant", max_steps=2, use_cpu=True, report_to="none",
        save_strategy="no", disable_tqdm=True,
        deepspeed=deepspeed_config(ScaleSpec(num_workers=1, deepspeed={"stage": stage})))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.pad_token = tokenizer.eos_token
    model = apply_method(AutoModelForCausalLM.from_pretrained(model_path),
                         TypeAdapter(MethodSpec).validate_python(method), "causal_lm")
    rows = [dict(tokenizer(text), labels=tokenizer(text)["input_ids"])
            for text in ["vim: an editor", "curl: fetch URLs", "git: version control"] * 2]
    trainer = trainer_class()(model=model, args=args, train_dataset=rows,
                              data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True))
    trainer.train()
    zero = trainer.optimizer.optimizer  # accelerate's wrapper around DeepSpeed's ZeRO optimizer
    print(json.dumps({"optimizer": type(zero).__name__,
                      "lrs": sorted(group["lr"] for group in zero.param_groups)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
