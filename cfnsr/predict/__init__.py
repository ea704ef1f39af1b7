"""Predict emotions on any video, window by window, with a trained cfnsr checkpoint.

``python predict.py ckpt_path=<ckpt> input=<video | folder | glob>`` (see docs/predict.md):

* ``windows``: plan the windows of a video and decode them in one streaming pass (bounded memory);
* ``faces``:   the largest face per sampled frame (MediaPipe's BlazeFace via cv2.dnn), its box smoothed over the window;
* ``model``:   rebuild the network and its preprocessing from the checkpoint's saved config;
* ``outputs``: ``predictions.csv`` and one ``timeline_<video stem>.png`` per video;
* ``run``:     the whole run (the Hydra entry point calls ``run.predict``);
* ``detector_gap`` (formerly ``crop_gap``, kept as an alias module that warns): how much a checkpoint loses on its
  test fold with detector crops instead of landmark crops.
"""
