"""Running the SimplerEnv-style suite: the episode loop, summaries and the command line."""
