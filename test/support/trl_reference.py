"""
PyTorch/PEFT reference numbers for the trl backend's tests, read from a JSON request on argv[1]:
- {"mode": "logits", "model", "adapter", "ids"}: PEFT logits of one row, flattened.
- {"mode": "sft", "model", "adapter", "ids": [[...]], "mask": [[...]]}: the SFT loss (mean cross
  entropy over masked target tokens, as TRL's SFTTrainer) and every LoRA gradient by PEFT name.
"""

import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

req = json.loads(sys.argv[1])
torch.manual_seed(0)
base = AutoModelForCausalLM.from_pretrained(req["model"], dtype=torch.float32)
model = PeftModel.from_pretrained(base, req["adapter"], is_trainable=req["mode"] == "sft")
model.eval()
if req["mode"] == "logits":
    with torch.no_grad():
        out = model(torch.tensor([req["ids"]])).logits[0]
    print(json.dumps({"logits": out.flatten().tolist()}))
else:
    ids = torch.tensor(req["ids"])
    labels = ids.clone()
    labels[torch.tensor(req["mask"]) == 0] = -100
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    grads = {n: p.grad.flatten().tolist() for n, p in model.named_parameters() if p.requires_grad}
    print(json.dumps({"loss": loss.item(), "grads": grads}))
