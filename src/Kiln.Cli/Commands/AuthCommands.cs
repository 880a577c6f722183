using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Auth;
using Kiln.Core;
using Kiln.Auth.Http;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln auth user|token|grant|ungrant|list|audit</c>: who may use kiln server (docs/security.md).</summary>
internal static class AuthCommands
{
    private static readonly Option<string?> Db = new("--db")
    {
        Description = "The metadata database kiln server uses (docs/cli.md#locations): a directory (kiln.db inside), sqlite:///FILE or postgresql://...; default $KILN_TRACKING_URI, else ./.kiln. An http(s):// URL works as --server.",
        Recursive = true,
    };

    private static readonly Option<string?> Server = new("--server")
    {
        Description = "Manage through this kiln server's admin API (http(s)://host:5000) instead of its database; sign in as an admin with MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD.",
        Recursive = true,
    };

    private static readonly Option<bool> Json = new("--json") { Description = "Print JSON on stdout instead of a table.", Recursive = true };

    private static string Location(ParseResult parse)
    {
        if (parse.GetValue(Server) is { } server)
        {
            if (parse.GetValue(Db) is not null) throw new KilnException("give --server URL or --db LOCATION, not both");
            if (!Kiln.Storage.StorageLocation.IsServer(server)) throw new KilnException($"--server {server}: not a server URL (http(s)://host:port)");
            return server;
        }
        return parse.GetValue(Db) ?? (Environment.GetEnvironmentVariable("KILN_TRACKING_URI") is { Length: > 0 } env ? env : Kiln.Tracking.TrackingStores.DefaultUri);
    }

    private static bool IsServer(ParseResult parse) => Kiln.Storage.StorageLocation.IsServer(Location(parse));

    /// <summary>The database, or a server's admin API when the location is an http(s):// URL: the commands are the same.</summary>
    private static IAuthAdmin Open(ParseResult parse)
    {
        var location = Location(parse);
        if (!Kiln.Storage.StorageLocation.IsServer(location)) return AuthStore.Open(location);
        if (!Uri.TryCreate(location, UriKind.Absolute, out var uri)) throw new KilnException($"--server {location}: not a valid URL");
        return new AuthApiClient(uri);
    }

    // A password sent to a server crosses the network: say so when that is in clear text beyond this machine.
    private static void WarnClearText(ParseResult parse)
    {
        if (!IsServer(parse)) return;
        var uri = new Uri(Location(parse));
        if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback)
            Console.Error.WriteLine($"warning: the password goes to {uri.GetLeftPart(UriPartial.Authority)} over plain HTTP; serve kiln server with --tls-cert/--tls-key and use https://");
    }

    public static Command Create()
    {
        var auth = new Command("auth", "Users, service tokens, permissions and the audit trail of kiln server (docs/security.md).");
        auth.Options.Add(Db);
        auth.Options.Add(Server);
        auth.Options.Add(Json);
        auth.Subcommands.Add(UserCommand());
        auth.Subcommands.Add(TokenCommand());
        auth.Subcommands.Add(GrantCommand());
        auth.Subcommands.Add(UngrantCommand());
        auth.Subcommands.Add(ListCommand());
        auth.Subcommands.Add(AuditCommand());
        return auth;
    }

    private static readonly Option<bool> PasswordStdin = new("--password-stdin") { Description = "Read the password from the first line of standard input (otherwise it is asked for on the terminal)." };

    private static string ReadPassword(ParseResult parse)
    {
        if (parse.GetValue(PasswordStdin))
        {
            var line = Console.In.ReadLine();
            if (string.IsNullOrEmpty(line)) throw new KilnException("--password-stdin: standard input had no password on its first line");
            return line;
        }
        if (Console.IsInputRedirected) throw new KilnException("no terminal to ask for a password: give it on standard input with --password-stdin (or use --no-password for a token-only user)");
        var first = Cli.Err.Prompt(new TextPrompt<string>("Password:").Secret());
        var again = Cli.Err.Prompt(new TextPrompt<string>("Again:").Secret());
        if (first != again) throw new KilnException("the two passwords differ");
        return first;
    }

    private static Command UserCommand()
    {
        var name = new Argument<string>("name") { Description = "User name (no spaces or ':')" };
        var admin = new Option<bool>("--admin") { Description = "An admin: every permission on everything, and the audit trail." };
        var noPassword = new Option<bool>("--no-password") { Description = "A user that signs in with service tokens only (a CI job, a pipeline)." };
        var defaultPermission = new Option<string?>("--default-permission") { Description = "The user's permission on what it holds no grant for: READ, EDIT, MANAGE or NO_PERMISSIONS (default: the server's --default-permission)." };
        var add = new Command("add", "Add a user; the password is hashed with ASP.NET Core Identity's password hasher.") { name, admin, noPassword, defaultPermission, PasswordStdin };
        add.SetHandler(async (parse, ct) =>
        {
            var d = parse.GetValue(defaultPermission) is { } text ? Permissions.Parse(text, "--default-permission") : (Permission?)null;
            var password = parse.GetValue(noPassword) ? null : ReadPassword(parse);
            if (password is not null) WarnClearText(parse);
            await using var store = Open(parse);
            var user = await store.AddUserAsync(parse.GetValue(name)!, password, parse.GetValue(admin), d, ct);
            Cli.Err.MarkupLineInterpolated($"added {(user.IsAdmin ? "admin" : "user")} [bold]{user.Name}[/] to {store.Description}; kiln server requires sign-in from its next start (a running one within two seconds)");
            return 0;
        });
        var passwd = new Command("password", "Set a user's password (sign-ins with the old one stop at once).") { name, PasswordStdin };
        passwd.SetHandler(async (parse, ct) =>
        {
            var password = ReadPassword(parse);
            WarnClearText(parse);
            await using var store = Open(parse);
            await store.SetPasswordAsync(parse.GetValue(name)!, password, ct);
            Cli.Err.MarkupLineInterpolated($"password of {parse.GetValue(name)} changed");
            return 0;
        });
        var delete = new Command("delete", "Delete a user with its tokens and grants (the audit trail keeps its name).") { name };
        delete.SetHandler(async (parse, ct) =>
        {
            await using var store = Open(parse);
            await store.DeleteUserAsync(parse.GetValue(name)!, ct);
            Cli.Err.MarkupLineInterpolated($"deleted user {parse.GetValue(name)}");
            return 0;
        });
        return new Command("user", "Add, delete users and set passwords.") { add, passwd, delete };
    }

    private static Command TokenCommand()
    {
        var user = new Option<string?>("--user") { Description = "The user the token signs in as (its permissions are the user's)." };
        var description = new Option<string?>("--description") { Description = "What the token is for (shown by kiln auth list)." };
        var expires = new Option<string?>("--expires") { Description = "Lifetime, e.g. 90d or 12h (docs/cli.md#durations); default: no expiry." };
        var file = new Option<string?>("--file") { Description = "Append the token's hash to this token file (for kiln serve --token-file) instead of the database." };
        var tokenName = new Option<string?>("--name") { Description = "With --file: the token's name in the file." };
        var create = new Command("create", "Create a service token: printed once on stdout, stored only as its SHA-256.") { user, description, expires, file, tokenName };
        create.SetHandler(async (parse, ct) =>
        {
            DateTimeOffset? until = parse.GetValue(expires) is { } e ? DateTimeOffset.UtcNow + Duration.Parse(e, "--expires") : null;
            string secret;
            if (parse.GetValue(file) is { } path)
            {
                var n = parse.GetValue(tokenName) ?? throw new KilnException("--file needs --name (the token's name in the file)");
                secret = TokenFile.Append(path, n, until);
                Cli.Err.MarkupLineInterpolated($"token [bold]{n}[/] added to {path}; it is shown once, below");
            }
            else
            {
                var u = parse.GetValue(user) ?? throw new KilnException("--user is required (or --file FILE --name NAME for a token file)");
                await using var store = Open(parse);
                var (token, s) = await store.CreateTokenAsync(u, parse.GetValue(description), until, ct);
                secret = s;
                Cli.Err.MarkupLineInterpolated($"token [bold]{token.Id}[/] for {u}{(until is null ? "" : $", expires {until:yyyy-MM-dd HH:mm} UTC")}; it is shown once, below (revoke with kiln auth token revoke {token.Id})");
            }
            Console.Out.WriteLine(secret);
            return 0;
        });
        var id = new Argument<string>("id") { Description = "The token's id (kiln auth list shows it)" };
        var revoke = new Command("revoke", "Revoke a token: it stops working at once.") { id };
        revoke.SetHandler(async (parse, ct) =>
        {
            await using var store = Open(parse);
            await store.RevokeTokenAsync(parse.GetValue(id)!, ct);
            Cli.Err.MarkupLineInterpolated($"token {parse.GetValue(id)} revoked");
            return 0;
        });
        return new Command("token", "Create and revoke service tokens.") { create, revoke };
    }

    private static readonly Option<string?> Experiment = new("--experiment") { Description = "An experiment, by id." };
    private static readonly Option<string?> Model = new("--model") { Description = "A registered model, by name." };

    private static (ResourceKind Kind, string Id) Resource(ParseResult parse) => (parse.GetValue(Experiment), parse.GetValue(Model)) switch
    {
        ({ } e, null) => (ResourceKind.Experiment, e),
        (null, { } m) => (ResourceKind.RegisteredModel, m),
        _ => throw new KilnException("give one of --experiment ID or --model NAME"),
    };

    private static Command GrantCommand()
    {
        var user = new Argument<string>("user") { Description = "User name" };
        var permission = new Argument<string>("permission") { Description = "READ, EDIT, MANAGE or NO_PERMISSIONS" };
        var grant = new Command("grant", "Give a user a permission on one experiment or registered model (replacing what it had there).") { user, permission, Experiment, Model };
        grant.SetHandler(async (parse, ct) =>
        {
            var p = Permissions.Parse(parse.GetValue(permission), "permission");
            var (kind, id) = Resource(parse);
            await using var store = Open(parse);
            await store.GrantAsync(parse.GetValue(user)!, kind, id, p, ct);
            Cli.Err.MarkupLineInterpolated($"{parse.GetValue(user)} has {Permissions.Name(p)} on {Permissions.Name(kind)} {id}");
            return 0;
        });
        return grant;
    }

    private static Command UngrantCommand()
    {
        var user = new Argument<string>("user") { Description = "User name" };
        var ungrant = new Command("ungrant", "Remove a user's grant on one experiment or registered model (its default permission applies again).") { user, Experiment, Model };
        ungrant.SetHandler(async (parse, ct) =>
        {
            var (kind, id) = Resource(parse);
            await using var store = Open(parse);
            if (!await store.RemoveGrantAsync(parse.GetValue(user)!, kind, id, ct))
                throw new KilnException($"{parse.GetValue(user)} holds no grant on {Permissions.Name(kind)} {id}");
            Cli.Err.MarkupLineInterpolated($"removed the grant of {parse.GetValue(user)} on {Permissions.Name(kind)} {id}");
            return 0;
        });
        return ungrant;
    }

    private static string When(DateTimeOffset? t) => t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "";

    private static Command ListCommand()
    {
        var list = new Command("list", "List users, service tokens (never their secrets) and grants.");
        list.SetHandler(async (parse, ct) =>
        {
            await using var store = Open(parse);
            var users = await store.ListUsersAsync(ct);
            var tokens = await store.ListTokensAsync(ct);
            var grants = await store.ListGrantsAsync(ct);
            if (parse.GetValue(Json))
            {
                var now0 = DateTimeOffset.UtcNow;
                var doc = new JsonObject
                {
                    ["users"] = new JsonArray(users.Select(u => (JsonNode)new JsonObject
                    {
                        ["name"] = u.Name, ["admin"] = u.IsAdmin, ["default_permission"] = u.DefaultPermission is { } d ? Permissions.Name(d) : null,
                        ["password"] = u.HasPassword, ["created"] = When(u.CreatedAt),
                    }).ToArray()),
                    ["tokens"] = new JsonArray(tokens.Select(t => (JsonNode)new JsonObject
                    {
                        ["id"] = t.Id, ["user"] = t.User, ["description"] = t.Description, ["created"] = When(t.CreatedAt), ["expires"] = When(t.ExpiresAt),
                        ["last_used"] = When(t.LastUsedAt), ["revoked"] = When(t.RevokedAt), ["active"] = t.IsActive(now0),
                    }).ToArray()),
                    ["grants"] = new JsonArray(grants.Select(g => (JsonNode)new JsonObject
                    {
                        ["user"] = g.User, ["kind"] = Permissions.Name(g.Kind), ["resource"] = g.Resource, ["permission"] = Permissions.Name(g.Permission),
                    }).ToArray()),
                };
                Console.Out.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            var ut = new Table().AddColumns("user", "admin", "default permission", "password", "created (UTC)");
            foreach (var u in users)
                ut.AddRow(Markup.Escape(u.Name), u.IsAdmin ? "yes" : "", u.DefaultPermission is { } d ? Permissions.Name(d) : "(server's)", u.HasPassword ? "yes" : "tokens only", When(u.CreatedAt));
            Cli.Err.Write(ut);
            var tt = new Table().AddColumns("token", "user", "description", "created", "expires", "last used", "state");
            var now = DateTimeOffset.UtcNow;
            foreach (var t in tokens)
            {
                tt.AddRow(t.Id, Markup.Escape(t.User), Markup.Escape(t.Description ?? ""), When(t.CreatedAt), When(t.ExpiresAt), When(t.LastUsedAt),
                    t.RevokedAt is not null ? "revoked" : t.IsActive(now) ? "active" : "expired");
            }
            Cli.Err.Write(tt);
            var gt = new Table().AddColumns("user", "on", "permission");
            foreach (var g in grants) gt.AddRow(Markup.Escape(g.User), Markup.Escape($"{Permissions.Name(g.Kind)} {g.Resource}"), Permissions.Name(g.Permission));
            Cli.Err.Write(gt);
            return 0;
        });
        return list;
    }

    private static Command AuditCommand()
    {
        var user = new Option<string?>("--user") { Description = "Only this user's calls." };
        var since = new Option<string?>("--since") { Description = "Only calls in this past duration (e.g. 24h, docs/cli.md#durations)." };
        var resource = new Option<string?>("--resource") { Description = "Only calls on this resource, e.g. registered_model:churn or experiment:3." };
        var limit = new Option<int>("--limit") { Description = "At most this many rows, newest first.", DefaultValueFactory = _ => 100 };
        var audit = new Command("audit", "The audit trail: every state-changing call to kiln server (who, what, when, from where, and the answer).") { user, since, resource, limit };
        audit.SetHandler(async (parse, ct) =>
        {
            if (parse.GetValue(limit) <= 0) throw new KilnException($"--limit must be positive; got {parse.GetValue(limit)}");
            DateTimeOffset? from = parse.GetValue(since) is { } s ? DateTimeOffset.UtcNow - Duration.Parse(s, "--since") : null;
            var query = new AuditQuery(parse.GetValue(user), from, parse.GetValue(resource), parse.GetValue(limit));
            await using var store = Open(parse);
            var rows = (await store.ReadAuditAsync(query, ct)).Select(AuditEntryDto.Of).ToList();
            if (parse.GetValue(Json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new AuditResponse { Entries = rows }, AuthJson.Default.AuditResponse));
                return 0;
            }
            var table = new Table().AddColumns("when (UTC)", "user", "call", "resource", "status", "from");
            foreach (var r in rows)
                table.AddRow(r.At, Markup.Escape(r.User ?? "(anonymous)"), Markup.Escape(r.Action), Markup.Escape(r.Resource ?? ""), r.Status.ToString(CultureInfo.InvariantCulture), Markup.Escape(r.Remote ?? ""));
            Cli.Err.Write(table);
            return 0;
        });
        return audit;
    }
}
