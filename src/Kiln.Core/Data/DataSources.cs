using System.Text.RegularExpressions;

namespace Kiln.Core.Data;

/// <summary>Resolves a data location (a file, a directory or a glob) to CSV and Parquet files.</summary>
public static class DataSources
{
    /// <summary>The files a location names, sorted by path so that reads are reproducible.</summary>
    public static IReadOnlyList<string> Resolve(string location, string? baseDirectory = null)
    {
        if (string.IsNullOrWhiteSpace(location)) throw new KilnException("data location is empty");
        var path = baseDirectory is null || Path.IsPathRooted(location) ? location : Path.Combine(baseDirectory, location);
        if (File.Exists(path)) return [Path.GetFullPath(path)];
        if (Directory.Exists(path))
        {
            var files = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Where(f => IsDataFile(f) && !IsHidden(path, f)).Order(StringComparer.Ordinal).ToList();
            return files.Count > 0 ? files : throw new KilnException($"{location}: the directory holds no .csv or .parquet file");
        }
        if (path.IndexOfAny(['*', '?']) >= 0)
        {
            var (root, pattern) = SplitGlob(path);
            if (!Directory.Exists(root)) throw new KilnException($"{location}: directory '{root}' does not exist");
            var regex = GlobToRegex(pattern);
            var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                .Where(f => regex.IsMatch(Path.GetRelativePath(root, f).Replace('\\', '/')) && IsDataFile(f) && !IsHidden(root, f))
                .Order(StringComparer.Ordinal).ToList();
            return files.Count > 0 ? files : throw new KilnException($"{location}: no .csv or .parquet file matches");
        }
        throw new KilnException($"{location}: no such file or directory");
    }

    /// <summary>
    /// Files or folders under the root whose name starts with '_' or '.' are not data (Hive's and Spark's convention, as
    /// pyarrow reads datasets): hidden files being written, _SUCCESS markers, the prediction log's _feedback labels.
    /// </summary>
    public static bool IsHidden(string root, string file)
    {
        foreach (var part in Path.GetRelativePath(root, file).Split('/', '\\'))
            if (part.Length > 0 && part is not "." and not ".." && (part[0] == '_' || part[0] == '.')) return true;
        return false;
    }

    public static bool IsDataFile(string path) => IsCsv(path) || IsParquet(path);

    public static bool IsCsv(string path) => path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase);

    public static bool IsParquet(string path) =>
        path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pq", StringComparison.OrdinalIgnoreCase);

    private static (string Root, string Pattern) SplitGlob(string path)
    {
        var full = Path.GetFullPath(path).Replace('\\', '/');
        var firstWild = full.IndexOfAny(['*', '?']);
        var slash = full.LastIndexOf('/', firstWild);
        return (full[..Math.Max(slash, 1)], full[(slash + 1)..]);
    }

    private static Regex GlobToRegex(string pattern)
    {
        var sb = new System.Text.StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                sb.Append(".*");
                i++;
                if (i + 1 < pattern.Length && pattern[i + 1] == '/') i++;
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant);
    }
}
