namespace Kiln.Core;

/// <summary>
/// An error a user can act on: the message is one line naming the file, row, column, field or
/// spec key at fault. The CLI prints it alone; the HTTP layers map it to a 4xx response.
/// </summary>
public class KilnException : Exception
{
    public KilnException(string message) : base(message) { }

    public KilnException(string message, Exception inner) : base(message, inner) { }

    public KilnException() { }
}
