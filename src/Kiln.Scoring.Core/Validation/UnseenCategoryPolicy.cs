namespace Kiln.Scoring.Validation;

/// <summary>What a category never seen in training does to a request.</summary>
public enum UnseenCategoryPolicy
{
    /// <summary>The request fails with 422 naming the field and the value.</summary>
    Reject,

    /// <summary>The row is scored (the model sees an unknown category) and the response and the log flag it.</summary>
    Flag,
}
