"""``manage.py reindex_knowledge``: re-embed every chunk whose model is not the configured
embedder's (after changing ``KNOWLEDGE_EMBEDDER`` or its model), with a progress bar.

Each batch commits on its own, so stopping the command (Ctrl-C, a crash) loses at most one
batch; running it again resumes with the chunks still to do. Two copies running at once
share the work (rows are claimed with SKIP LOCKED)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from knowledge import services
from knowledge.embedders import get_embedder


class Command(BaseCommand):
    help = "Re-embed the knowledge chunks with the configured embedder (resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=256)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args: Any, **options: Any) -> None:
        from tqdm import tqdm

        embedder = get_embedder()
        remaining = services.chunks_needing_reindex(embedder.name).count()
        if remaining == 0:
            self.stdout.write(f"Every chunk is already embedded with {embedder.name}.")
            return
        self.stdout.write(f"Re-embedding {remaining} chunks with {embedder.name}.")
        done = 0
        with tqdm(total=remaining, unit="chunk", disable=options["no_progress"], file=self.stderr) as bar:
            while True:
                count = services.chunks_reindex_batch(options["batch_size"])
                if count == 0:
                    break
                done += count
                bar.update(count)
        self.stdout.write(f"Done: {done} chunks re-embedded.")
