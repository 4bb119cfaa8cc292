#!/bin/bash
# Rung 3 (ABC -> D): the rung-2 "default + proprioception" recipe on the 700 expert episodes of scenes
# A, B and C (data/calvin_abc_noise), evaluated on the first 100 official chains of D.
cd /work/main
export OMP_NUM_THREADS=1
echo "train start $(date)"
python -m trainer.train --config trainer/configs/paligemma_ph_lstm_state.json data.path=data/calvin_abc_noise \
    train.batch_size=32 train.max_steps=9000 train.max_minutes=55 data.num_workers=1 \
    train.out=runs/rung3_abc > runs/rung3_abc.log 2>&1
echo "train done $(date)"
python -m bench.run --policy vla:runs/rung3_abc/latest --scene D --chains 100 --workers 2 --seed 0 \
    --out runs/rung3_abc_eval_D --quiet > runs/rung3_abc_eval.log 2>&1
echo "eval done $(date)"
