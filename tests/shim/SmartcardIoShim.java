import javax.smartcardio.*;

/*
 * Java smartcardio through the shim: connect T=1, one SELECT, disconnect
 * with reset.  Usage: java SmartcardIoShim.java READER
 */
public class SmartcardIoShim {
	public static void main(String[] args) throws Exception {
		CardTerminal terminal = TerminalFactory.getDefault().terminals().getTerminal(args[0]);
		Card card = terminal.connect("T=1");
		ResponseAPDU r = card.getBasicChannel().transmit(
			new CommandAPDU(new byte[] { 0x00, (byte) 0xA4, 0x04, 0x00, 0x00 }));
		System.out.printf("sw %04X%n", r.getSW());
		card.disconnect(true);
	}
}
