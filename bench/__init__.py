"""`make bench`: the project's imaging code against a naive Pillow baseline and libvips, on the shared corpus."""
