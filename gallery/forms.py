"""The forms people fill in: an image's editable metadata (the admin)."""

from __future__ import annotations

from django import forms

from pipeline import records


class ImageMetadataForm(forms.Form):
    title = forms.CharField(
        max_length=records.MAX_TITLE_LENGTH, required=False, widget=forms.TextInput(attrs={"size": 60})
    )
    alt_text = forms.CharField(
        label="Alt text",
        max_length=records.MAX_ALT_TEXT_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="What the image shows, for people who cannot see it. Used as the alt attribute.",
    )
    tags = forms.CharField(
        required=False,
        help_text=f"Comma-separated, e.g. “beach, sunset”. Stored in lower case; at most {records.MAX_TAGS}.",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    hidden = forms.BooleanField(
        required=False, help_text="Hidden images are left out of the gallery and the API (a 404 for their id)."
    )

    def clean_tags(self) -> tuple[str, ...]:
        try:
            return records.normalize_tags(self.cleaned_data["tags"])
        except ValueError as error:
            raise forms.ValidationError(str(error).capitalize() + ".") from None
