import ZenMLCommands

@main
struct Entrypoint {
    static func main() async {
        await ZenMLRun.runMain()
    }
}
