"""The demo day of `scripts/demo`: the plan drawn from a seed (`plan`), the HTTP client it
talks through (`client`), the day played through the API (`day`), the counter scenes of each
dispensing rule (`counter`), the summary it prints (`printing`), and its command (`cli`)."""
